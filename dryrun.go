package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/decodo-batch/decodo-batch/batcher"
	"github.com/decodo-batch/decodo-batch/io/records"
	"github.com/decodo-batch/decodo-batch/job"
)

// maxListed caps the bad rows printed by --strict and --dry-run.
const maxListed = 100

// checkInput reads the whole input, prints its bad rows to stderr (capped)
// and hands each good record to each. It returns the rows and bad rows
// seen, or a fatal error of the input.
func checkInput(input string, opts records.Options, stderr io.Writer, each func(*records.Record)) (rows, bad int64, err error) {
	rd, err := records.Open(input, opts)
	if err != nil {
		return 0, 0, err
	}
	defer rd.Close()
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		var re *records.RowError
		if errors.As(err, &re) {
			rows++
			bad++
			if bad <= maxListed {
				fmt.Fprintf(stderr, "%s: %v\n", input, re)
			}
			continue
		}
		if err != nil {
			return rows, bad, err
		}
		rows++
		if each != nil {
			each(&rec)
		}
	}
	if bad > maxListed {
		fmt.Fprintf(stderr, "%s: ... and %d more bad rows\n", input, bad-maxListed)
	}
	return rows, bad, nil
}

// dryRun reads and validates the input and groups it as a run would, with
// no network, and prints the counts.
func dryRun(input string, opts records.Options, f runFlags, stdout, stderr io.Writer) error {
	start := time.Now()
	g := batcher.NewGrouper(batcher.Config{Size: f.batchSize})
	var batches, partial int64
	keys := map[batcher.Key]bool{}
	rows, bad, err := checkInput(input, opts, stderr, func(rec *records.Record) {
		keys[batcher.KeyOf(rec)] = true
		full, evicted := g.Add(batcher.Item{Record: *rec, Attempt: 1}, start)
		if full != nil {
			batches++
		}
		if evicted != nil {
			batches++
			partial++
		}
	})
	if err != nil {
		return err
	}
	for g.Open() > 0 {
		g.Oldest(time.Now())
		batches++
		partial++
	}
	least := time.Duration(0)
	if batches > 1 {
		least = time.Duration(batches-1) * f.batchInterval
	}
	secs := time.Since(start).Seconds()
	fmt.Fprintf(stdout, "rows      %d\nvalid     %d\nrejects   %d\ngroups    %d\nbatches   %d (%d partly filled)\nleast submission time  %s at --batch-interval %s\nread in   %.2fs (%.0f rows/s)\n",
		rows, rows-bad, bad, len(keys), batches, partial, least, f.batchInterval, secs, float64(rows)/max(secs, 1e-9))
	if bad > 0 {
		return fmt.Errorf("%d bad rows: %w", bad, job.ErrPartial)
	}
	return nil
}

// strict reads the whole input before anything is submitted; any bad row
// aborts the run, with every bad row listed (capped).
func strict(input string, opts records.Options, stderr io.Writer) error {
	_, bad, err := checkInput(input, opts, stderr, nil)
	if err != nil {
		return err
	}
	if bad > 0 {
		return fmt.Errorf("--strict: %d bad rows in %s; nothing was submitted", bad, input)
	}
	return nil
}

package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/decodo-batch/decodo-batch/batcher"
	"github.com/decodo-batch/decodo-batch/io/records"
)

// maxListed caps the bad rows printed by --strict and --dry-run.
const maxListed = 100

// dryRun reads and validates the input and groups it as a run would, with
// no network, and prints the counts.
func dryRun(input string, opts records.Options, f runFlags, stdout, stderr io.Writer) error {
	start := time.Now()
	rd, err := records.Open(input, opts)
	if err != nil {
		return err
	}
	defer rd.Close()
	g := batcher.NewGrouper(f.batchSize, 0, 0)
	var rows, bad, batches, partial int64
	keys := map[batcher.Key]bool{}
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
			return err
		}
		rows++
		keys[batcher.KeyOf(&rec)] = true
		full, evicted := g.Add(batcher.Item{Record: rec, Attempt: 1}, start)
		if full != nil {
			batches++
		}
		if evicted != nil {
			batches++
			partial++
		}
	}
	for g.Open() > 0 {
		g.Oldest(time.Now())
		batches++
		partial++
	}
	if bad > maxListed {
		fmt.Fprintf(stderr, "%s: ... and %d more bad rows\n", input, bad-maxListed)
	}
	least := time.Duration(0)
	if batches > 1 {
		least = time.Duration(batches-1) * f.batchInterval
	}
	secs := time.Since(start).Seconds()
	fmt.Fprintf(stdout, "rows      %d\nvalid     %d\nrejects   %d\ngroups    %d\nbatches   %d (%d partly filled)\nleast submission time  %s at --batch-interval %s\nread in   %.2fs (%.0f rows/s)\n",
		rows, rows-bad, bad, len(keys), batches, partial, least, f.batchInterval, secs, float64(rows)/max(secs, 1e-9))
	if bad > 0 {
		return errPartial
	}
	return nil
}

// strict reads the whole input before anything is submitted; any bad row
// aborts the run, with every bad row listed (capped).
func strict(input string, opts records.Options, stderr io.Writer) error {
	rd, err := records.Open(input, opts)
	if err != nil {
		return err
	}
	defer rd.Close()
	var bad int64
	for {
		_, err := rd.Next()
		if err == io.EOF {
			break
		}
		var re *records.RowError
		if errors.As(err, &re) {
			bad++
			if bad <= maxListed {
				fmt.Fprintf(stderr, "%s: %v\n", input, re)
			}
			continue
		}
		if err != nil {
			return err
		}
	}
	if bad > maxListed {
		fmt.Fprintf(stderr, "%s: ... and %d more bad rows\n", input, bad-maxListed)
	}
	if bad > 0 {
		return fmt.Errorf("--strict: %d bad rows in %s; nothing was submitted", bad, input)
	}
	return nil
}

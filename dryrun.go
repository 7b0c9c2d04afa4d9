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
	seen := map[[16]byte]bool{} // requests: rows asking the same are duplicates
	var dups, singles, singleDups int64
	rows, bad, err := checkInput(input, opts, stderr, func(rec *records.Record) {
		k := rec.RequestKey()
		dup := seen[k]
		seen[k] = true
		single := !batcher.Batchable(rec)
		if single {
			singles++
		}
		if dup {
			dups++
			if single {
				singleDups++
			}
			if f.dedupe {
				return
			}
		}
		if single {
			return // POST /v3/task, one by one at --task-rate
		}
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
	if f.dedupe {
		singles -= singleDups
	}
	least := time.Duration(0)
	if batches > 1 {
		least = time.Duration(batches-1) * f.batchInterval
	}
	if f.taskRate > 0 {
		least = max(least, time.Duration(float64(singles)/f.taskRate*float64(time.Second)))
	}
	valid := rows - bad
	dedupe := "without --dedupe"
	if f.dedupe {
		dedupe = "with --dedupe"
	}
	secs := time.Since(start).Seconds()
	for _, l := range [][2]string{
		{"rows", fmt.Sprint(rows)},
		{"valid", fmt.Sprint(valid)},
		{"rejects", fmt.Sprint(bad)},
		{"duplicates", fmt.Sprintf("%d (rows asking what an earlier row asks)", dups)},
		{"tasks to pay for", fmt.Sprintf("%d without --dedupe, %d with it", valid, valid-dups)},
		{"groups", fmt.Sprint(len(keys))},
		{"batches", fmt.Sprintf("%d (%d partly filled; %s)", batches, partial, dedupe)},
		{"single tasks", fmt.Sprint(singles)},
		{"least submission time", fmt.Sprintf("%s at --batch-interval %s, --task-rate %g", least.Round(time.Millisecond), f.batchInterval, f.taskRate)},
		{"read in", fmt.Sprintf("%.2fs (%.0f rows/s)", secs, float64(rows)/max(secs, 1e-9))},
	} {
		fmt.Fprintf(stdout, "%-22s %s\n", l[0], l[1])
	}
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

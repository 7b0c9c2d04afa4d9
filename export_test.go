package main

import "github.com/decodo-batch/decodo-batch/job"

func fingerprintForTest(path string) (int64, string, error) { return job.Fingerprint(path) }

package results

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/decodo-batch/decodo-batch/io/checkpoint"
)

// TestRetake proves the rewrite of the failed file for each codec: the
// lines taken back are gone, the others kept in order, the file whole
// (it decompresses), the unvouched tail ignored; and that recovery renames
// the rewrite the journal named and removes any other.
func TestRetake(t *testing.T) {
	t.Parallel()
	for _, codec := range []string{"", Gzip, Zstd} {
		t.Run("codec "+codec, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			w, err := Open(dir, Options{Compress: codec}, checkpoint.Offsets{})
			if err != nil {
				t.Fatal(err)
			}
			classes := []string{"faulted", "unknown", "faulted", "budget"}
			for i, c := range classes {
				must(t, w.Failed(&Failure{Row: Row{Row: int64(i + 1), Line: int64(i + 2), Target: "universal", Field: "url", Input: "https://example.com"}, Class: c, Error: "x", Attempts: 1}))
			}
			off, err := w.Commit()
			must(t, err)
			must(t, w.Failed(&Failure{Row: Row{Row: 9, Target: "universal"}, Class: "faulted", Error: "not vouched for"}))
			w.Commit()
			must(t, w.Close())

			rows, size, token, err := Retake(dir, codec, off.Failed, func(l FailedLine) bool { return l.Class == "faulted" })
			must(t, err)
			if !slices.Equal(rows, []int64{1, 3}) || token == "" {
				t.Fatalf("taken %v (token %q), want rows 1 and 3", rows, token)
			}
			stale := FailedPath(dir, codec) + retakeSuffix + "0123"
			must(t, os.WriteFile(stale, []byte("an interrupted rewrite"), 0o644))
			must(t, RecoverRetake(dir, codec, token)) // as after a crash past the journal
			if _, err := os.Stat(stale); !os.IsNotExist(err) {
				t.Errorf("a rewrite the journal did not name survived: %v", err)
			}
			data, err := os.ReadFile(FailedPath(dir, codec))
			must(t, err)
			if int64(len(data)) != size {
				t.Errorf("failed file is %d bytes, Retake said %d", len(data), size)
			}
			text := string(decompress(t, FailedPath(dir, codec)))
			if strings.Count(text, "\n") != 2 || !strings.Contains(text, `"row":2,`) || !strings.Contains(text, `"row":4,`) || strings.Contains(text, "vouched") {
				t.Errorf("rewritten failed file:\n%s", text)
			}
			// Nothing to take: nothing written.
			rows, _, _, err = Retake(dir, codec, size, func(FailedLine) bool { return false })
			if err != nil || rows != nil {
				t.Errorf("nothing to take: %v, %v", rows, err)
			}
			if m, _ := filepath.Glob(filepath.Join(dir, "*"+retakeSuffix+"*")); len(m) != 0 {
				t.Errorf("files left: %v", m)
			}
		})
	}
}

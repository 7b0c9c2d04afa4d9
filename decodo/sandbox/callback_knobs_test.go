package sandbox

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestCallbackKnobs proves the callback knobs: a loss rate of 1 makes no
// callback (counted lost), a duplication rate of 1 makes every callback
// twice (counted duplicated), each with its task's id and passthrough.
func TestCallbackKnobs(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	got := map[string]int{} // task id -> callbacks
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var tk taskObject
		if json.Unmarshal(b, &tk) != nil || string(tk.Passthrough) != `"pt-1"` {
			t.Errorf("callback body %s", b)
		}
		mu.Lock()
		got[tk.ID]++
		mu.Unlock()
	}))
	t.Cleanup(rcv.Close)

	lossy, base := start(t, Config{CallbackLossRate: 1, Delay: Delay{Fixed: time.Millisecond}})
	for range 3 {
		submitOne(t, base, map[string]any{"url": "https://a.example/", "callback_url": rcv.URL, "passthrough": "pt-1"})
	}
	if st := lossy.Stats(); st.CallbacksLost != 3 {
		t.Errorf("CallbacksLost = %d, want 3", st.CallbacksLost)
	}

	dup, base := start(t, Config{CallbackDupRate: 1, CallbackDelay: 20 * time.Millisecond, Delay: Delay{Fixed: time.Millisecond}})
	ids := map[string]bool{}
	for range 3 {
		ids[submitOne(t, base, map[string]any{"url": "https://a.example/", "callback_url": rcv.URL, "passthrough": "pt-1"})] = true
	}
	// The duplicates come up to a second after the first callbacks.
	for range 1000 {
		if st := dup.Stats(); st.CallbacksSent == 6 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := dup.Stats()
	if st.CallbacksSent != 6 || st.CallbacksDuplicated != 3 {
		t.Errorf("sent %d, duplicated %d; want 6 and 3", st.CallbacksSent, st.CallbacksDuplicated)
	}
	mu.Lock()
	defer mu.Unlock()
	for id := range ids {
		if got[id] != 2 {
			t.Errorf("task %s called back %d times, want 2", id, got[id])
		}
	}
	if len(got) != 3 {
		t.Errorf("callbacks for %d tasks, want 3 (none from the lossy sandbox)", len(got))
	}
}

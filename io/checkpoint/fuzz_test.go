package checkpoint

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
)

// replayOnePass replays data applying each record in full, pending tasks
// included: what the live Journal does, one call at a time.
func replayOnePass(t *testing.T, data []byte) *State {
	rd := newReader(bytes.NewReader(data), int64(len(data)))
	p, _ := rd.next()
	s, err := decodeHeader(p)
	if err != nil {
		t.Fatalf("one pass: %v", err)
	}
	var a applier
	for first := true; ; first = false {
		end := rd.pos
		p, ok := rd.next()
		if !ok || s.apply(p, &a, first) != nil {
			s.TornBytes = int64(len(data)) - end
			return s
		}
	}
}

// FuzzReplay proves that any bytes after a valid header replay without a
// panic or an error to a consistent state; that the whole records it kept
// replay to that same state with nothing torn; and that a snapshot of it
// replays to it too; and that replay's two passes agree with applying one
// record after another, as the live Journal does. With framed set, the input is cut into payloads
// ([2-byte length][payload]...) framed with valid CRCs, so that the decoder
// of every record type is reached, not only the CRC check.
func FuzzReplay(f *testing.F) {
	path := journalPath(f)
	j := mustOpen(f, path, testHeader, false)
	must(f, j.Submit(t0, 1, tasks(1, 70, 7434928397127555073)))
	must(f, j.Finish(t0, OutcomeResult, rows(1, 40), Offsets{Results: 4000}))
	must(f, j.Finish(t0, OutcomeRejected, []int64{71, 90}, Offsets{Results: 4000, Rejects: 60}))
	must(f, j.Submit(t0, 2, tasks(41, 45, 9)))
	must(f, j.InputEnd(90))
	must(f, j.Sync())
	data, err := os.ReadFile(path)
	must(f, err)
	must(f, j.Compact())
	must(f, j.Close())
	compacted, err := os.ReadFile(path)
	must(f, err)

	hl := headerLen(f, data)
	header := data[:hl]
	f.Add(false, data[hl:])
	f.Add(false, data[hl:len(data)-3])
	f.Add(false, []byte{0, 0, 0, 0, 0, 0})
	f.Add(false, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	// The same records as payloads, and the snapshot.
	for _, src := range [][]byte{data[hl:], compacted[headerLen(f, compacted):]} {
		var framed []byte
		for len(src) > 0 {
			n, k := binary.Uvarint(src)
			p := src[k+4 : k+4+int(n)]
			framed = binary.BigEndian.AppendUint16(framed, uint16(len(p)))
			framed = append(framed, p...)
			src = src[k+4+int(n):]
		}
		f.Add(true, framed)
	}

	f.Fuzz(func(t *testing.T, framed bool, tail []byte) {
		file := bytes.Clone(header)
		if framed {
			for len(tail) >= 2 {
				n := min(int(binary.BigEndian.Uint16(tail)), len(tail)-2)
				file = frame(file, tail[2:2+n])
				tail = tail[2+n:]
			}
		} else {
			file = append(file, tail...)
		}

		s, end, err := replay(bytes.NewReader(file), int64(len(file)))
		if err != nil {
			t.Fatalf("replay after a valid header: %v", err)
		}
		if err := s.check(); err != nil {
			t.Fatalf("inconsistent state: %v", err)
		}
		if end < int64(hl) || end > int64(len(file)) || s.TornBytes != int64(len(file))-end {
			t.Fatalf("end %d, torn %d of %d bytes (header %d)", end, s.TornBytes, len(file), hl)
		}

		// Replay's two passes agree with applying each record in turn, as
		// the live Journal does.
		one := replayOnePass(t, file)
		sameState(t, "one pass", viewOf(one), viewOf(s))
		if one.TornBytes != s.TornBytes {
			t.Fatalf("one pass: %d torn bytes, two passes %d", one.TornBytes, s.TornBytes)
		}

		// What Open keeps after cutting the tail.
		kept, end2, err := replay(bytes.NewReader(file[:end]), end)
		if err != nil || end2 != end || kept.TornBytes != 0 {
			t.Fatalf("the kept %d bytes replay to end %d, torn %d, err %v", end, end2, kept.TornBytes, err)
		}
		want := viewOf(s)
		sameState(t, "kept records", viewOf(kept), want)

		// What Compact writes.
		snap := frame(nil, appendHeader(nil, s))
		snap = frame(snap, appendSnapshot(nil, s))
		c, _, err := replay(bytes.NewReader(snap), int64(len(snap)))
		if err != nil || c.TornBytes != 0 {
			t.Fatalf("snapshot replays with torn %d, err %v", c.TornBytes, err)
		}
		sameState(t, "snapshot", viewOf(c), want)
	})
}

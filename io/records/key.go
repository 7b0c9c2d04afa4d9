package records

import (
	"crypto/sha256"
	"encoding/binary"
)

// RequestKey identifies what a record asks the API for: its target, input
// field and value, and parameters. Two records with the same key ask for
// the same task (deduplicating runs pay for one). It is a hash, 16 bytes
// of sha256, so that a set of millions stays small.
func (r *Record) RequestKey() [16]byte {
	h := sha256.New()
	field, value := r.Input()
	var n [binary.MaxVarintLen64]byte
	for _, s := range [...]string{r.Target, field.String(), value, string(r.Params)} {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	var k [16]byte
	copy(k[:], h.Sum(nil))
	return k
}

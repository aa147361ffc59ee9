package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
)

// payloadSeed seeds the deterministic payload of GET /bytes. Exactly 32
// bytes, the ChaCha8 seed size.
var payloadSeed = [32]byte([]byte("uvs bench deterministic payload."))

// Payload returns a new reader of the deterministic byte stream that the test
// servers send for GET /bytes?n=N (its first N bytes). It never ends.
func Payload() io.Reader {
	return rand.NewChaCha8(payloadSeed)
}

// ExpectedSHA256 returns the lower-case hex SHA-256 of the first n bytes of
// Payload, for checking a GET /bytes?n=N body independently of the server.
func ExpectedSHA256(n int) string {
	h := sha256.New()
	if _, err := io.CopyN(h, Payload(), int64(n)); err != nil {
		panic("bench: payload stream ended: " + err.Error()) // Payload never ends
	}
	return hex.EncodeToString(h.Sum(nil))
}

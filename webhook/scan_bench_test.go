package webhook

import (
	"encoding/json"
	"testing"
)

// BenchmarkScanObject compares the fast path's scan of the 5 KiB Deployment with decoding its
// metadata with encoding/json and with encoding/json's validity check alone.
func BenchmarkScanObject(b *testing.B) {
	b.Run("scan", func(b *testing.B) {
		b.SetBytes(int64(len(deploymentJSON)))
		b.ReportAllocs()
		var s objectScan
		var m objectMeta
		for b.Loop() {
			if !scanObject(deploymentJSON, true, &s) {
				b.Fatal("scan did not apply")
			}
			if !metaFromScan(&s, &m) {
				b.Fatal("scan did not apply")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(deploymentJSON)))
		b.ReportAllocs()
		for b.Loop() {
			var obj struct {
				Metadata objectMeta `json:"metadata"`
			}
			if err := json.Unmarshal(deploymentJSON, &obj); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json-valid", func(b *testing.B) {
		b.SetBytes(int64(len(deploymentJSON)))
		for b.Loop() {
			if !json.Valid(deploymentJSON) {
				b.Fatal("invalid")
			}
		}
	})
}

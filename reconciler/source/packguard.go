package source

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// guardedStorage is a cache clone's storage whose packfile writer refuses a
// pack holding an object over maxObject bytes as soon as the object's header
// arrives. go-git indexes a fetched pack by reading every object whole into
// memory, so without the guard one large file in a commit costs its size in
// memory before any check on the checkout could run.
type guardedStorage struct {
	*filesystem.Storage
	// maxObject is the source's limits.maxFileSize, set before each fetch
	// (fetches into one cache are serialized); zero turns the guard off.
	maxObject int64
}

// PackfileWriter implements storer.PackfileWriter.
func (s *guardedStorage) PackfileWriter() (io.WriteCloser, error) {
	w, err := s.Storage.PackfileWriter()
	if err != nil || s.maxObject <= 0 {
		return w, err
	}
	return newPackGuard(w, s.maxObject), nil
}

// packGuard passes a pack through to w while a scanner reads the object
// headers from a copy of the stream.
type packGuard struct {
	w       io.WriteCloser
	pw      *io.PipeWriter
	done    chan error
	once    sync.Once
	scanned error // what the scanner ended with
	err     error // a limit the pack is over
}

func newPackGuard(w io.WriteCloser, maxObject int64) *packGuard {
	pr, pw := io.Pipe()
	g := &packGuard{w: w, pw: pw, done: make(chan error, 1)}
	go func() {
		err := scanPack(pr, maxObject)
		// Unblock the writer; after the pack's last object the scanner reads
		// no more.
		pr.CloseWithError(errScanned)
		g.done <- err
	}()
	return g
}

// errScanned closes the scanner's side of the pipe.
var errScanned = errors.New("pack scanned")

// stop waits for the scanner and keeps what it found.
func (g *packGuard) stop() {
	g.once.Do(func() {
		g.pw.Close()
		g.scanned = <-g.done
		if errors.Is(g.scanned, ErrLimitExceeded) {
			g.err = g.scanned
		}
	})
}

// Write implements io.Writer: it fails once the pack is over the limit.
func (g *packGuard) Write(p []byte) (int, error) {
	if g.err == nil && g.scanned == nil {
		if _, err := g.pw.Write(p); err != nil {
			// The scanner stopped: over the limit, done, or unable to
			// read the pack (which go-git then reports itself).
			g.stop()
		}
	}
	if g.err != nil {
		return 0, g.err
	}
	return g.w.Write(p)
}

// Close implements io.Closer.
func (g *packGuard) Close() error {
	g.stop()
	err := g.w.Close()
	if g.err != nil {
		return g.err
	}
	return err
}

// scanPack reads the object headers of a pack and fails with a
// [*LimitError] at the first object larger than max bytes: a whole object,
// a delta, or the object a delta produces. Object data is inflated into
// io.Discard, except the first bytes of a delta, which hold its target size.
func scanPack(r io.Reader, max int64) error {
	s := packfile.NewScanner(r)
	_, n, err := s.Header()
	if err != nil {
		return err
	}
	for range n {
		oh, err := s.NextObjectHeader()
		if err != nil {
			return err
		}
		size := oh.Length
		if size <= max && (oh.Type == plumbing.OFSDeltaObject || oh.Type == plumbing.REFDeltaObject) {
			head := &headWriter{}
			if _, _, err := s.NextObject(head); err != nil {
				return err
			}
			size = deltaTargetSize(head.buf)
		} else if size <= max {
			if _, _, err := s.NextObject(io.Discard); err != nil {
				return err
			}
		}
		if size > max {
			return &LimitError{Limit: "limits.maxFileSize", Msg: fmt.Sprintf(
				"the fetched commit holds a %s object of %s, over the source's limits.maxFileSize of %s; the fetch was stopped",
				objectKind(oh.Type), formatBytes(size), formatBytes(max))}
		}
	}
	return nil
}

// objectKind names an object type for messages: a delta is the file it makes.
func objectKind(t plumbing.ObjectType) string {
	if t == plumbing.OFSDeltaObject || t == plumbing.REFDeltaObject {
		return "delta-compressed"
	}
	return t.String()
}

// headWriter keeps the first bytes written to it and discards the rest.
type headWriter struct{ buf []byte }

func (h *headWriter) Write(p []byte) (int, error) {
	if room := 32 - len(h.buf); room > 0 {
		h.buf = append(h.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// deltaTargetSize reads the size of the object a delta produces: the
// second of the two variable-length sizes the delta starts with.
func deltaTargetSize(b []byte) int64 {
	var sizes [2]int64
	for i := range sizes {
		var shift uint
		for len(b) > 0 && shift < 63 {
			c := b[0]
			b = b[1:]
			sizes[i] |= int64(c&0x7f) << shift
			shift += 7
			if c&0x80 == 0 {
				break
			}
		}
	}
	return sizes[1]
}

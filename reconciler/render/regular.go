package render

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// ErrNotRegular is returned, wrapped, for a path a render would read that is a named pipe,
// a socket or a device: a pipe would block the read and a device might never end it. Git
// stores none of them; `driftless check` reads working trees, where they can be.
var ErrNotRegular = errors.New("not a regular file")

// special are the file types a render refuses to read.
const special = fs.ModeNamedPipe | fs.ModeSocket | fs.ModeDevice | fs.ModeCharDevice | fs.ModeIrregular

// openRegular opens a file a render reads with open and returns it, and what it is, unless it is
// special (a directory is returned: reading it fails by itself). It opens without blocking,
// so that a named pipe is refused rather than waited on.
func openRegular(open func(flag int) (*os.File, error)) (*os.File, fs.FileInfo, error) {
	f, err := open(os.O_RDONLY | openNonblock)
	if err != nil {
		return nil, nil, err
	}
	info, err := f.Stat()
	if err == nil && info.Mode()&special != 0 {
		err = fmt.Errorf("%s, %w", fileKind(info.Mode()), ErrNotRegular)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, info, nil
}

// readRegular reads a file opened with openRegular.
func readRegular(open func(flag int) (*os.File, error)) ([]byte, error) {
	f, info, err := openRegular(open)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if info.Size() > 0 {
		buf.Grow(int(info.Size()) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// fileKind names the type of a special file.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	default:
		return "an irregular file"
	}
}

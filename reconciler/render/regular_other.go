//go:build !unix

package render

// openNonblock is not needed where named pipes are not files.
const openNonblock = 0

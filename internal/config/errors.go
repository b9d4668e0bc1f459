package config

import (
	"errors"
	"strconv"
)

// Error is a problem with a configuration file: where it is and what is
// wrong. Every error returned by Load and LoadFile is an *Error, or several
// of them joined with errors.Join; use errors.As to get at them.
//
// Messages never contain a password, an auth string or anything decoded
// from one.
type Error struct {
	// File is the name the configuration was loaded from; never empty.
	File string
	// Line is the 1-based line the problem is on, 0 when it is not about
	// one line (an empty or unreadable file).
	Line int
	// Msg says what is wrong.
	Msg string

	// err is the underlying error when there is one worth testing for
	// (errors.Is(err, fs.ErrNotExist) on an unreadable file). It is only
	// ever set to I/O errors, never to anything that could hold a secret.
	err error
}

// Error formats the problem as "FILE:LINE: MSG", or "FILE: MSG" without a
// line.
func (e *Error) Error() string {
	if e.Line > 0 {
		return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
	}
	return e.File + ": " + e.Msg
}

// Unwrap returns the underlying I/O error, if any.
func (e *Error) Unwrap() error { return e.err }

// Errors returns every *Error in err, in order: err itself when it is one,
// or the members of an errors.Join. It returns nil when err holds none.
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *Error:
			out = append(out, e)
		case interface{ Unwrap() []error }:
			for _, m := range e.Unwrap() {
				walk(m)
			}
		default:
			var ce *Error
			if errors.As(err, &ce) {
				out = append(out, ce)
			}
		}
	}
	walk(err)
	return out
}

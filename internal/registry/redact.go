package registry

import "regexp"

// urlQuery finds the query of a URL in a message: an absolute http(s) URL
// or a registry API path. Upload URLs carry the registry's signed upload
// state there (_state=...), CDN blob URLs their signature: neither belongs
// in an error, a log line or the daemon's /status.
var urlQuery = regexp.MustCompile(`((?:[hH][tT][tT][pP][sS]?://|/v2/)[^\s"'<>?]*)\?[^\s"'<>]*`)

// StripQueries returns err with the query of every URL in its message
// removed. errors.Is and errors.As see err as it was.
func StripQueries(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := urlQuery.ReplaceAllString(msg, "$1")
	if clean == msg {
		return err
	}
	return &queryless{err: err, msg: clean}
}

// StripURLQueries is StripQueries for text.
func StripURLQueries(s string) string { return urlQuery.ReplaceAllString(s, "$1") }

type queryless struct {
	err error
	msg string
}

func (q *queryless) Error() string { return q.msg }
func (q *queryless) Unwrap() error { return q.err }

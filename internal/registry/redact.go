package registry

import "regexp"

// urlQuery finds the query or fragment of a URL in a message: an absolute
// http(s) URL or a registry API path. Upload URLs carry the registry's
// signed upload state there (_state=...), CDN blob URLs their signature:
// neither belongs in an error, a log line or the daemon's pages.
var urlQuery = regexp.MustCompile(`((?:[hH][tT][tT][pP][sS]?://|/v2/)[^\s"'<>?#]*)[?#][^\s"'<>]*`)

// urlUser finds the user information of an absolute http(s) URL
// ("https://user:password@host"): credentials.
var urlUser = regexp.MustCompile(`([hH][tT][tT][pP][sS]?://)[^/\s"'<>@]*@`)

// StripQueries returns err with the query, fragment and user information
// of every URL in its message removed. errors.Is and errors.As see err as
// it was.
func StripQueries(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := StripURLQueries(msg)
	if clean == msg {
		return err
	}
	return &queryless{err: err, msg: clean}
}

// StripURLQueries is StripQueries for text: the one rule for what of a
// URL may be shown (errors, logs, the status page).
func StripURLQueries(s string) string {
	return urlQuery.ReplaceAllString(urlUser.ReplaceAllString(s, "$1"), "$1")
}

type queryless struct {
	err error
	msg string
}

func (q *queryless) Error() string { return q.msg }
func (q *queryless) Unwrap() error { return q.err }

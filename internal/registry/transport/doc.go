// Package transport owns the network's manners for every registry request:
// the HTTP transport stack (TLS and CA setup, refusing silent plain-HTTP
// downgrades, per-host request caps, waiting out 429s and low rate limits,
// bounding response sizes and stalls, counting the bytes sent), the
// request retry policy and Retryable, the one place that decides what is
// transient. Policy is what a run asks for; Hosts applies it and keeps what
// the run learns of each host, shared by every store of the run. It knows
// nothing of stores, artifacts or endpoints beyond Config.
package transport

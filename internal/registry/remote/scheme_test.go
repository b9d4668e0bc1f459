package remote_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/remote"
	"github.com/regmirror/regmirror/internal/registry/transport"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// sniffer relays TCP connections to a backend and records the first byte
// each one carried: 0x16 opens a TLS handshake, 'G' or 'H' a plain HTTP
// request.
type sniffer struct {
	ln    net.Listener
	mu    sync.Mutex
	first []byte
	conns []net.Conn
	wg    sync.WaitGroup
}

func newSniffer(t *testing.T, backend string) *sniffer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sniffer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.relay(c, backend)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close() // idle keep-alive connections of the store
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *sniffer) relay(c net.Conn, backend string) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil {
		return
	}
	s.mu.Lock()
	s.first = append(s.first, b[0])
	s.mu.Unlock()
	up, err := net.DialTimeout("tcp", backend, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	_ = up.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := up.Write(b); err != nil {
		return
	}
	done := make(chan struct{})
	go func() { _, _ = io.Copy(c, up); c.Close(); close(done) }()
	_, _ = io.Copy(up, c)
	up.Close()
	<-done
}

func (s *sniffer) firstBytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.first...)
}

// TestPlainHTTPRegistryIsNeverAskedForTLS: a registry written http:// is
// spoken to in plain HTTP only. go-containerregistry would open a
// connection for an https attempt first (a round trip to learn the
// registry does not speak TLS, on every run); no connection to it may
// start with a TLS handshake.
func TestPlainHTTPRegistryIsNeverAskedForTLS(t *testing.T) {
	reg := regtest.New(t)
	imagegen.Push(t, reg.Ref("team/app:1"), imagegen.Image(3, 1, 256))
	sn := newSniffer(t, reg.Host)

	s, err := remote.Open(registry.Endpoint{Registry: sn.ln.Addr().String(), PlainHTTP: true},
		registry.Options{Hosts: transport.DefaultHosts(), Retry: &transport.Retry{Attempts: 1, Wait: time.Millisecond, Factor: 1}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tags, err := s.Tags(ctx, "team/app")
	if err != nil || len(tags) != 1 {
		t.Fatalf("tags %v, %v", tags, err)
	}
	if _, err := s.Head(ctx, "team/app", "1"); err != nil {
		t.Fatal(err)
	}
	first := sn.firstBytes()
	if len(first) == 0 {
		t.Fatal("no connection went through the relay")
	}
	for i, b := range first {
		if b == 0x16 {
			t.Errorf("connection %d of %d opened a TLS handshake to a registry written http://", i+1, len(first))
		}
	}
}

package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
)

// In a pipe, sync prints log lines only: no carriage returns, no escape
// sequences, no status line.
func TestSyncInAPipePrintsNoProgress(t *testing.T) {
	cfg := shardConfig(t, t.TempDir(), 2)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		got <- string(b)
	}()
	var out bytes.Buffer
	err = Execute(context.Background(), []string{"sync", "--config", cfg, "--platform-cache", ""}, strings.NewReader(""), &out, w)
	w.Close()
	logs := <-got
	if err != nil {
		t.Fatalf("sync: %v\n%s", err, logs)
	}
	if strings.Count(logs, "msg=copied") != 2 {
		t.Errorf("want 2 copied lines, got:\n%s", logs)
	}
	if strings.ContainsAny(logs, "\r\033") || strings.Contains(logs, "sync: ") {
		t.Errorf("progress output in a pipe:\n%q", logs)
	}
}

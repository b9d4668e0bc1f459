package daemon

import (
	"context"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchSettle is how long the config file must be quiet before a change
// is loaded: editors write in several steps (truncate, write, rename).
const watchSettle = 250 * time.Millisecond

// watchFile watches the configuration file's directory, not the file: an
// editor that saves by writing a new file and renaming it over the old one
// (vim, most IDEs, Kubernetes ConfigMap updates) replaces the inode, and a
// watch on the old inode would go quiet. Changes are acted on only while
// the configuration in force says watch: true.
func (d *Daemon) watchFile(ctx context.Context) {
	path := d.o.Path
	w, err := fsnotify.NewWatcher()
	if err != nil {
		d.log.Warn("cannot watch the configuration file; reload with SIGHUP", "config", path, "error", err)
		return
	}
	defer w.Close()
	if err := w.Add(filepath.Dir(path)); err != nil {
		d.log.Warn("cannot watch the configuration file; reload with SIGHUP", "config", path, "error", err)
		return
	}
	var settle <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if d.watch.Load() && ev.Op != fsnotify.Chmod {
				settle = time.After(watchSettle)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			d.log.Warn("watching the configuration file", "config", path, "error", err)
		case <-settle:
			settle = nil
			if d.watch.Load() {
				d.reload("file changed", true)
			}
		}
	}
}

package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/gatehouse-dev/gatehouse/config"
)

// reloadDebounce lets a burst of file events (an editor's save, Kubernetes'
// ..data symlink swap) settle into one reload. It runs from the first event
// of a burst and is not restarted by later ones: a folder written to all
// the time (a log file beside the config) must not put a reload off for
// ever.
const reloadDebounce = 250 * time.Millisecond

// watchConfigDir starts watching the config file's folder, not the file:
// Kubernetes updates a ConfigMap volume by swapping a ..data symlink, which
// a watch on the file itself would never see. serve calls it before the
// listeners open, so no change after readiness can be missed.
func watchConfigDir(path string) (*fsnotify.Watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := w.Add(filepath.Dir(path)); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// watchReloads reloads the configuration on SIGHUP and whenever the file's
// content differs from last (the checksum taken before the running
// configuration was loaded). w may be nil: then only SIGHUP reloads.
//
// hup is registered with signal.Notify by the caller before anything
// starts, so that a SIGHUP can never reach the default action (exit).
func (a *app) watchReloads(ctx context.Context, e env, path string, hup <-chan os.Signal, w *fsnotify.Watcher, last [32]byte) {
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w != nil {
		events, errs = w.Events, w.Errors
	}
	var debounce <-chan time.Time
	name := filepath.Base(path)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			a.reload(e, path, "sighup")
			last = fileSum(path)
		case ev, ok := <-events:
			if !ok {
				events = nil // the watcher closed (shutdown): stop listening
				continue
			}
			// The file itself (written, replaced, renamed onto) or
			// Kubernetes' ..data swap; the checksum decides whether the
			// content really changed.
			if base := filepath.Base(ev.Name); (base == name || strings.HasPrefix(base, "..")) && debounce == nil {
				debounce = time.After(reloadDebounce)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			a.logger.Warn("config watch error", "err", err)
		case <-debounce:
			debounce = nil
			if sum := fileSum(path); sum != last {
				last = sum
				a.reload(e, path, "file")
			}
		}
	}
}

// fileSum returns the checksum of the file's content, or zero if it cannot
// be read (a reload then reports why).
func fileSum(path string) [32]byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return [32]byte{}
	}
	return sha256.Sum256(b)
}

// reload loads the file and, if it is valid, swaps routes, upstreams and
// policies atomically for new requests. An invalid file keeps the running
// configuration and logs every problem.
func (a *app) reload(e env, path, trigger string) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	cfg, err := e.loadConfig(path)
	if err == nil {
		old := a.current.Load()
		var gw *gateway
		if gw, err = a.build(cfg); err == nil {
			a.warnRestartOnly(old.cfg.Listen != cfg.Listen, "listen")
			a.warnRestartOnly(old.cfg.AdminListen != cfg.AdminListen, "admin_listen")
			a.warnRestartOnly(!reflect.DeepEqual(old.cfg.Redis, cfg.Redis), "redis")
			a.current.Store(gw)
			// Requests already running keep the old transports; their
			// idle connections are closed now, and connections busy now
			// close after the transport's idle timeout.
			old.handler.Close()
			a.metrics.reloads.WithLabelValues("success").Inc()
			a.logger.Info("configuration reloaded", "file", path, "trigger", trigger, "routes", len(cfg.Routes))
			return
		}
	}
	a.metrics.reloads.WithLabelValues("failure").Inc()
	a.logger.Error("configuration reload failed; keeping the running configuration", "file", path, "trigger", trigger)
	var problems config.Problems
	if errors.As(err, &problems) {
		for _, p := range problems {
			a.logger.Error("configuration problem", "problem", p.Error())
		}
	} else {
		a.logger.Error("configuration problem", "problem", err.Error())
	}
}

func (a *app) warnRestartOnly(changed bool, key string) {
	if changed {
		a.logger.Warn("a changed key takes effect only after a restart", "key", key)
	}
}

package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisProc is the harness's own redis-server: a fresh, empty store on a
// free loopback port in a temporary folder, never the machine's shared one.
type redisProc struct {
	bin  string
	dir  string
	port int
	aof  bool
	proc *child
	cli  *redis.Client
}

func startRedis(ctx context.Context, bin, dir string, aof bool) (*redisProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &redisProc{bin: bin, dir: dir, port: port, aof: aof}
	if err := r.start(ctx); err != nil {
		return nil, err
	}
	r.cli = redis.NewClient(&redis.Options{
		Addr:         r.addr(),
		DialTimeout:  time.Second,
		ReadTimeout:  30 * time.Second, // a loading pipeline may take a while
		WriteTimeout: 30 * time.Second,
		MaxRetries:   -1,
		PoolSize:     8,
	})
	return r, nil
}

func (r *redisProc) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

func (r *redisProc) url() string { return "redis://" + r.addr() + "/0" }

// start runs redis-server on r.port. With aof, writes go to an append-only
// file (fsync every second) in r.dir, so a killed and restarted server
// comes back with its sessions, as a production one would.
func (r *redisProc) start(ctx context.Context) error {
	aof := "no"
	if r.aof {
		aof = "yes"
	}
	args := []string{
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--dir", r.dir, "--save", "", "--appendonly", aof, "--appendfsync", "everysec",
		"--daemonize", "no", "--loglevel", "warning",
	}
	c, err := startChild("redis-server", filepath.Join(r.dir, "redis.log"), r.bin, args, nil)
	if err != nil {
		return err
	}
	r.proc = c
	if err := waitTCP(ctx, c, r.addr(), 10*time.Second); err != nil {
		c.kill()
		return err
	}
	return nil
}

// restart kills redis-server with SIGKILL and starts it again on the same
// port and folder, replaying the append-only file.
func (r *redisProc) restart(ctx context.Context) error {
	r.proc.kill()
	if err := r.start(ctx); err != nil {
		return fmt.Errorf("restart redis: %w", err)
	}
	// The server accepts connections while it loads the AOF; wait for PING.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := r.cli.Ping(ctx).Err(); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("restarted redis does not answer PING")
}

func (r *redisProc) signal(sig syscall.Signal) error {
	return syscall.Kill(r.proc.pid(), sig)
}

func (r *redisProc) close() {
	if r == nil {
		return
	}
	if r.cli != nil {
		_ = r.cli.Close()
	}
	r.proc.kill()
}

// resetStats zeroes INFO commandstats (CONFIG RESETSTAT).
func (r *redisProc) resetStats(ctx context.Context) error {
	return r.cli.ConfigResetStat(ctx).Err()
}

// commandCalls returns the calls per command since the last reset, without
// the harness's own INFO and CONFIG.
func (r *redisProc) commandCalls(ctx context.Context) (map[string]uint64, error) {
	s, err := r.cli.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("info commandstats: %w", err)
	}
	calls := parseCommandStats(s)
	delete(calls, "info")
	delete(calls, "config|resetstat")
	delete(calls, "config")
	return calls, nil
}

// parseCommandStats reads "cmdstat_get:calls=3,usec=..." lines. Redis 7
// names subcommands "config|resetstat".
func parseCommandStats(info string) map[string]uint64 {
	out := map[string]uint64{}
	for line := range strings.Lines(info) {
		line = strings.TrimSpace(line)
		name, rest, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		for field := range strings.SplitSeq(rest, ",") {
			k, v, _ := strings.Cut(field, "=")
			if k == "calls" {
				n, err := strconv.ParseUint(v, 10, 64)
				if err == nil {
					out[strings.TrimPrefix(name, "cmdstat_")] = n
				}
			}
		}
	}
	return out
}

func sumCalls(calls map[string]uint64) uint64 {
	var n uint64
	for _, c := range calls {
		n += c
	}
	return n
}

// infoField returns one numeric field of an INFO section.
func (r *redisProc) infoField(ctx context.Context, section, field string) (int64, error) {
	s, err := r.cli.Info(ctx, section).Result()
	if err != nil {
		return 0, fmt.Errorf("info %s: %w", section, err)
	}
	for line := range strings.Lines(s) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && k == field {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("info %s: no %s", section, field)
}

// sessionLayout writes sessions the way package auth stores them (see
// auth/sessions.go): under prefix P,
//
//	P{u:<userID>}:s:<hex sha256(token)> = "<userID>\n<email>"  PX ttl
//	P{u:<userID>}:sessions              = zset hash -> end (unix ms)
//
// The tokens are random and thrown away: these sessions only fill the store
// so that lookups of the benchmark user's session meet a full keyspace.
type sessionLayout struct {
	prefix  string
	idle    time.Duration // the session key's TTL
	life    time.Duration // the absolute end, and the index's TTL
	perUser int           // sessions per user (a user's zset grows with them)
}

// loadSessions writes n sessions with pipelined commands over several
// connections, and returns how long it took.
func (r *redisProc) loadSessions(ctx context.Context, lay sessionLayout, n int) (time.Duration, error) {
	const batch = 5000
	const conns = 4
	start := time.Now()
	per := max(lay.perUser, 1)
	endMS := time.Now().Add(lay.life).UnixMilli()
	jobs := make(chan int)
	errs := make(chan error, conns)
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for first := range jobs {
				if err := r.loadBatch(ctx, lay, first, min(batch, n-first), per, endMS); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	var err error
feed:
	for first := 0; first < n; first += batch {
		select {
		case jobs <- first:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(jobs)
	// A worker that failed stopped taking jobs; drain the rest so the others end.
	go func() {
		for range jobs {
		}
	}()
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return time.Since(start), err
}

func (r *redisProc) loadBatch(ctx context.Context, lay sessionLayout, first, count, per int, endMS int64) error {
	pipe := r.cli.Pipeline()
	var uid, tag string
	var rnd [32]byte
	lifeMS := lay.life.Milliseconds()
	for i := first; i < first+count; i++ {
		newUser := uid == "" || i%per == 0
		if newUser {
			var u [16]byte
			_, _ = rand.Read(u[:])
			uid = hex.EncodeToString(u[:])
			tag = lay.prefix + "{u:" + uid + "}"
		}
		_, _ = rand.Read(rnd[:])
		sum := sha256.Sum256(rnd[:])
		h := hex.EncodeToString(sum[:])
		pipe.Set(ctx, tag+":s:"+h, uid+"\nload"+strconv.Itoa(i)+"@bench.example", lay.idle)
		pipe.ZAdd(ctx, tag+":sessions", redis.Z{Score: float64(endMS), Member: h})
		if newUser {
			pipe.PExpire(ctx, tag+":sessions", time.Duration(lifeMS)*time.Millisecond)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("load sessions: %w", err)
	}
	return nil
}

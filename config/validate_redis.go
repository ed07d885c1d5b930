package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

func (c *Config) validateRedis(v *collector) {
	r := c.Redis
	n := 0
	for _, set := range []bool{r.URL != "", r.Sentinel != nil, r.Cluster != nil} {
		if set {
			n++
		}
	}
	if n > 1 {
		v.add("redis", "set at most one of url, sentinel and cluster")
	}
	if r.URL != "" {
		// The URL may hold a password: no message repeats it.
		u, err := url.Parse(r.URL)
		switch {
		case err != nil:
			v.add("redis.url", "is not a valid URL")
		case u.Scheme != "redis" && u.Scheme != "rediss":
			v.add("redis.url", "scheme must be redis or rediss")
		case u.Host == "" || u.Hostname() == "":
			v.add("redis.url", "needs a host")
		case u.Port() != "" && checkPort(u.Port()) != "":
			v.add("redis.url", "invalid port")
		case !validRedisDB(u.Path):
			v.add("redis.url", "path must be empty or a database number such as /0")
		default:
			if msg := checkRedisURLOptions(u); msg != "" {
				v.add("redis.url", "%s", msg)
			}
		}
	}
	if s := r.Sentinel; s != nil {
		if s.Master == "" {
			v.add("redis.sentinel.master", "required")
		}
		addrs(v, "redis.sentinel.addrs", s.Addrs)
	}
	if cl := r.Cluster; cl != nil {
		addrs(v, "redis.cluster.addrs", cl.Addrs)
	}
	if r.Password != "" && n == 0 {
		v.add("redis.password", "set, but no redis url, sentinel or cluster is configured (the embedded store has no password)")
	}
	if r.KeyPrefix == "" {
		v.add("redis.key_prefix", "must not be empty")
	} else if strings.ContainsAny(r.KeyPrefix, "{}") {
		// The store puts one user's keys in one Cluster slot with a {hash
		// tag}; braces in the prefix would become the tag instead.
		v.add("redis.key_prefix", "must not contain { or }")
	}
}

func validRedisDB(p string) bool {
	if p == "" || p == "/" {
		return true
	}
	n, err := strconv.Atoi(strings.TrimPrefix(p, "/"))
	return err == nil && n >= 0 && strings.HasPrefix(p, "/")
}

func addrs(v *collector, path string, list []string) {
	if len(list) == 0 {
		v.add(path, "needs at least one host:port")
	}
	for i, a := range list {
		if msg := checkHostPort(a); msg != "" {
			v.add(fmt.Sprintf("%s[%d]", path, i), "%s", msg)
		} else if h, _, _ := net.SplitHostPort(a); h == "" {
			v.add(fmt.Sprintf("%s[%d]", path, i), "needs a host")
		}
	}
}

// redisURLOptions are the query options go-redis's ParseURL (v9) accepts in
// a redis.url, by the syntax of their value: 'i' an integer, 'd' a duration
// (a number of seconds or Go syntax), 'b' true, false, 1 or 0 (or empty),
// 's' any string. ParseURL refuses any other option, and the gateway opens
// the store only at start, so an unknown one would pass check and stop
// serve. (The timeouts and retries are overridden by the gateway anyway.)
var redisURLOptions = map[string]byte{
	"db": 'i', "protocol": 'i', "client_name": 's', "max_retries": 'i',
	"min_retry_backoff": 'd', "max_retry_backoff": 'd',
	"dial_timeout": 'd', "read_timeout": 'd', "write_timeout": 'd',
	"pool_fifo": 'b', "pool_size": 'i', "pool_timeout": 'd',
	"min_idle_conns": 'i', "max_idle_conns": 'i', "max_active_conns": 'i', "max_concurrent_dials": 'i',
	"pipeline_pool_size": 'i', "pipeline_read_buffer_size": 'i', "pipeline_write_buffer_size": 'i',
	"conn_max_idle_time": 'd', "idle_timeout": 'd',
	"conn_max_lifetime": 'd', "max_conn_age": 'd', "conn_max_lifetime_jitter": 'd',
	"skip_verify": 'b',
}

// checkRedisURLOptions returns what go-redis's ParseURL would refuse in the
// query of a redis.url, or "". It never quotes a value: the URL may hold a
// password.
func checkRedisURLOptions(u *url.URL) string {
	q := u.Query()
	for _, name := range sortedKeys(q) {
		kind, ok := redisURLOptions[name]
		switch {
		case !ok,
			// ParseURL reads skip_verify only for TLS, and an old alias
			// only when the new name is absent; what it leaves unread it
			// refuses.
			name == "skip_verify" && u.Scheme != "rediss",
			name == "idle_timeout" && q.Has("conn_max_idle_time"),
			name == "max_conn_age" && q.Has("conn_max_lifetime"):
			return fmt.Sprintf("unknown option %q in the query", name)
		}
		vs := q[name]
		val := vs[len(vs)-1] // ParseURL takes the last
		if val == "" {
			continue
		}
		switch kind {
		case 'i':
			if _, err := strconv.Atoi(val); err != nil {
				return fmt.Sprintf("option %q must be an integer", name)
			}
		case 'd':
			if _, err := strconv.Atoi(val); err != nil {
				if _, err := time.ParseDuration(val); err != nil {
					return fmt.Sprintf("option %q must be a duration such as 5s", name)
				}
			}
		case 'b':
			switch val {
			case "true", "false", "1", "0":
			default:
				return fmt.Sprintf("option %q must be true or false", name)
			}
		}
	}
	return ""
}

package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	tpclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/rs/zerolog"
	zlog "github.com/rs/zerolog/log"
)

// apiTimeout bounds every call to a user's toxiproxy server.
const apiTimeout = 10 * time.Second

// Route is one proxy listener: the connections of Group to Upstream go
// to Listen instead.
type Route struct {
	Upstream string // the broker's host:port
	Group    string // "" for every connection
	Listen   string // the proxy's host:port
	name     string // the proxy's name in toxiproxy
}

// Proxies are the fault proxies of a run: one per broker address and
// group of connections, in this process or on a user's toxiproxy server.
type Proxies struct {
	be     backend
	routes []Route
	mu     sync.Mutex
	// toxics are the names of each active fault's toxics, by proxy.
	toxics map[string][][2]string
}

// backend is where the proxies live: toxiproxy in this process, or a
// toxiproxy server reached over its HTTP API.
type backend interface {
	create(ctx context.Context, name, upstream string) (listen string, err error)
	addToxic(ctx context.Context, proxy string, t toxic) error
	removeToxic(ctx context.Context, proxy, name string) error
	remove(ctx context.Context, proxy string) error
	close()
}

// toxic is one toxiproxy toxic, as its API names it.
type toxic struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Stream     string         `json:"stream"`
	Toxicity   float32        `json:"toxicity"`
	Attributes map[string]any `json:"attributes"`
}

// NewProxies starts a proxy for every upstream (the brokers' host:port)
// and group: groups nil means one proxy per upstream for every
// connection. serverURL "" runs toxiproxy in this process, listening on
// 127.0.0.1; otherwise the proxies are made on that toxiproxy server,
// listening on its host.
func NewProxies(ctx context.Context, upstreams, groups []string, serverURL string) (*Proxies, error) {
	var be backend
	if serverURL == "" {
		be = newInproc()
	} else {
		rb, err := newRemote(serverURL)
		if err != nil {
			return nil, err
		}
		be = rb
	}
	if len(groups) == 0 {
		groups = []string{""}
	}
	p := &Proxies{be: be, toxics: map[string][][2]string{}}
	for i, up := range upstreams {
		for _, g := range groups {
			name := fmt.Sprintf("mqttbench-%d-%d", os.Getpid(), i)
			if g != "" {
				// A name is part of toxiproxy's API paths: no slash.
				name += "-" + strings.ReplaceAll(g, "/", "-part-")
			}
			listen, err := be.create(ctx, name, up)
			if err != nil {
				p.Close()
				return nil, fmt.Errorf("fault proxy for %s: %w", up, err)
			}
			p.routes = append(p.routes, Route{Upstream: up, Group: g, Listen: listen, name: name})
		}
	}
	return p, nil
}

// Routes are the proxy listeners.
func (p *Proxies) Routes() []Route { return p.routes }

// Addr is the listener for group's connections to upstream ("" when
// there is none: the proxies were made for every connection, or another
// upstream).
func (p *Proxies) Addr(upstream, group string) string {
	for _, r := range p.routes {
		if r.Upstream == upstream && (r.Group == group || r.Group == "") {
			return r.Listen
		}
	}
	return ""
}

// toxicsFor are the toxics that make a network fault, one per direction
// ("upstream" is client to broker, "downstream" broker to client).
func toxicsFor(sp Spec, id string) []toxic {
	both := func(typ string, attrs map[string]any) []toxic {
		return []toxic{
			{Name: id + "-up", Type: typ, Stream: "upstream", Toxicity: 1, Attributes: attrs},
			{Name: id + "-down", Type: typ, Stream: "downstream", Toxicity: 1, Attributes: attrs},
		}
	}
	switch sp.Kind {
	case Latency:
		return both("latency", map[string]any{"latency": sp.Latency.Milliseconds(), "jitter": sp.Jitter.Milliseconds()})
	case Bandwidth:
		// toxiproxy's rate is in KB/s (1000 bytes).
		return both("bandwidth", map[string]any{"rate": int64(sp.Bandwidth) / 1000})
	case Slicer:
		return both("slicer", map[string]any{"average_size": sp.Slicer, "size_variation": 0, "delay": sp.Delay.Microseconds()})
	case Reset:
		return both("reset_peer", map[string]any{"timeout": 0})
	case Blackhole:
		// timeout 0: data is dropped and the connection never closed.
		return both("timeout", map[string]any{"timeout": 0})
	}
	return nil
}

// Inject adds a network fault's toxics, named after id, to the proxies
// of its group and the parts of it (all of them for every connection).
func (p *Proxies) Inject(ctx context.Context, sp Spec, id string) error {
	ts := toxicsFor(sp, id)
	if ts == nil {
		return fmt.Errorf("%s is not a network fault", sp.Kind)
	}
	for _, r := range p.routes {
		if sp.Group != "" && !Covers(sp.Group, r.Group) {
			continue
		}
		for _, t := range ts {
			if err := p.be.addToxic(ctx, r.name, t); err != nil {
				return fmt.Errorf("adding %s to the proxy of %s: %w", t.Type, r.Upstream, err)
			}
			p.mu.Lock()
			p.toxics[id] = append(p.toxics[id], [2]string{r.name, t.Name})
			p.mu.Unlock()
		}
	}
	return nil
}

// Heal removes fault id's toxics; the connections carry on.
func (p *Proxies) Heal(ctx context.Context, id string) error {
	p.mu.Lock()
	ts := p.toxics[id]
	delete(p.toxics, id)
	p.mu.Unlock()
	var errs []error
	for _, t := range ts {
		if err := p.be.removeToxic(ctx, t[0], t[1]); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", t[1], err))
		}
	}
	return errors.Join(errs...)
}

// Close heals every fault and removes the proxies; their connections
// close.
func (p *Proxies) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	p.mu.Lock()
	ids := make([]string, 0, len(p.toxics))
	for id := range p.toxics {
		ids = append(ids, id)
	}
	p.mu.Unlock()
	for _, id := range ids {
		p.Heal(ctx, id) //nolint:errcheck // the proxies go next anyway
	}
	for _, r := range p.routes {
		p.be.remove(ctx, r.name) //nolint:errcheck // best effort on the way out
	}
	p.be.close()
}

// quietOnce silences zerolog's global logger, which toxiproxy's bandwidth
// toxic writes to (stderr by default); mqttbench logs nothing through it.
var quietOnce sync.Once

// inproc is toxiproxy in this process.
type inproc struct {
	srv *toxiproxy.ApiServer
}

func newInproc() *inproc {
	quietOnce.Do(func() { zlog.Logger = zerolog.Nop() })
	return &inproc{srv: toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())}
}

func (b *inproc) create(_ context.Context, name, upstream string) (string, error) {
	px := toxiproxy.NewProxy(b.srv, name, "127.0.0.1:0", upstream)
	if err := b.srv.Collection.Add(px, true); err != nil {
		return "", err
	}
	return px.Listen, nil
}

func (b *inproc) proxy(name string) (*toxiproxy.Proxy, error) { return b.srv.Collection.Get(name) }

func (b *inproc) addToxic(_ context.Context, proxy string, t toxic) error {
	px, err := b.proxy(proxy)
	if err != nil {
		return err
	}
	js, err := json.Marshal(t)
	if err != nil {
		return err
	}
	_, err = px.Toxics.AddToxicJson(strings.NewReader(string(js)))
	return err
}

func (b *inproc) removeToxic(ctx context.Context, proxy, name string) error {
	px, err := b.proxy(proxy)
	if err != nil {
		return err
	}
	return px.Toxics.RemoveToxic(ctx, name)
}

func (b *inproc) remove(_ context.Context, proxy string) error { return b.srv.Collection.Remove(proxy) }
func (b *inproc) close()                                       { b.srv.Collection.Clear() } //nolint:errcheck

// remote is a user's toxiproxy server. Its Go client has no deadlines,
// so every call runs under apiTimeout.
type remote struct {
	c    *tpclient.Client
	host string // the server's host, where its proxies listen
	mu   sync.Mutex
	px   map[string]*tpclient.Proxy
}

func newRemote(raw string) (*remote, error) {
	s := raw
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("--toxiproxy %q: want the server's API address, e.g. http://127.0.0.1:8474", raw)
	}
	return &remote{c: tpclient.NewClient(u.Scheme + "://" + u.Host), host: u.Hostname(), px: map[string]*tpclient.Proxy{}}, nil
}

// call runs f within ctx and apiTimeout; f's goroutine may outlive a
// deadline, but not the client's own connection.
func call[T any](ctx context.Context, f func() (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() { v, err := f(); ch <- result{v, err} }()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, fmt.Errorf("toxiproxy server: %w", ctx.Err())
	}
}

func (b *remote) create(ctx context.Context, name, upstream string) (string, error) {
	px, err := call(ctx, func() (*tpclient.Proxy, error) {
		return b.c.CreateProxy(name, net.JoinHostPort(b.host, "0"), upstream)
	})
	if err != nil {
		return "", err
	}
	b.mu.Lock()
	b.px[name] = px
	b.mu.Unlock()
	host, port, err := net.SplitHostPort(px.Listen)
	if err != nil {
		return "", fmt.Errorf("toxiproxy server listens on %q: %v", px.Listen, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = b.host
	}
	return net.JoinHostPort(host, port), nil
}

func (b *remote) get(name string) (*tpclient.Proxy, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	px, ok := b.px[name]
	if !ok {
		return nil, fmt.Errorf("no proxy %q", name)
	}
	return px, nil
}

func (b *remote) addToxic(ctx context.Context, proxy string, t toxic) error {
	px, err := b.get(proxy)
	if err != nil {
		return err
	}
	_, err = call(ctx, func() (*tpclient.Toxic, error) {
		return px.AddToxic(t.Name, t.Type, t.Stream, t.Toxicity, tpclient.Attributes(t.Attributes))
	})
	return err
}

func (b *remote) removeToxic(ctx context.Context, proxy, name string) error {
	px, err := b.get(proxy)
	if err != nil {
		return err
	}
	_, err = call(ctx, func() (struct{}, error) { return struct{}{}, px.RemoveToxic(name) })
	return err
}

func (b *remote) remove(ctx context.Context, proxy string) error {
	px, err := b.get(proxy)
	if err != nil {
		return err
	}
	_, err = call(ctx, func() (struct{}, error) { return struct{}{}, px.Delete() })
	b.mu.Lock()
	delete(b.px, proxy)
	b.mu.Unlock()
	return err
}

func (b *remote) close() {}

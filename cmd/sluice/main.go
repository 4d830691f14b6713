// Command sluice is the gateway: `sluice run` starts the data plane (and,
// as later releases add them, the Admin API and metrics); `version`,
// `keygen` and `validate` are the small helpers around it.
//
// main is the only place that wires the data plane (engine) to a config
// source (standalone file today) through one router.Publisher.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/sluice-gw/sluice/admin"
	"github.com/sluice-gw/sluice/admin/standalone"
	"github.com/sluice-gw/sluice/conf"
	"github.com/sluice-gw/sluice/engine"
	"github.com/sluice-gw/sluice/metrics"
	"github.com/sluice-gw/sluice/model"
	_ "github.com/sluice-gw/sluice/plugin/all" // every APISIX plugin sluice ships
	"github.com/sluice-gw/sluice/plugin/prometheus"
	"github.com/sluice-gw/sluice/router"
	sltls "github.com/sluice-gw/sluice/tls"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "0.1.0-dev"

// drainGrace bounds how long SIGTERM/SIGINT wait for requests in flight.
const drainGrace = 10 * time.Second

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "version", "-v", "--version":
		fmt.Fprintf(stdout, "sluice %s (%s, commit %s)\n", version, runtime.Version(), commit())
		return 0
	case "keygen":
		k, err := conf.GenerateKey()
		if err != nil {
			fmt.Fprintln(stderr, "sluice keygen:", err)
			return 1
		}
		fmt.Fprintln(stdout, k)
		return 0
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "apply":
		return cmdApply(args[1:], stdout, stderr)
	case "stats":
		return cmdStats(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "sluice: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: sluice <command> [flags]

commands:
  run [-c conf/config.yaml]   start the gateway (no file: built-in defaults)
  validate -c FILE            check a config file (and conf/apisix.yaml in yaml mode)
  apply -f FILE [--dry-run]   sync routes, upstreams, consumers, ... in FILE to a running
                              gateway through its Admin API (sluice apply -h for flags)
  stats [--once] [--url URL]  per-route / per-arm table from the metrics endpoint
                              (sluice stats -h for flags)
  keygen                      print a fresh random admin key
  version                     print version, Go version and commit
`)
}

func commit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				if len(s.Value) > 12 {
					return s.Value[:12]
				}
				return s.Value
			}
		}
	}
	return "unknown"
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "conf/config.yaml", "config file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := conf.Parse(*path) // checks keys too, but generates and writes nothing
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	if cfg.Deployment.ConfigProvider == "yaml" {
		ap := standalonePath(cfg)
		data, err := os.ReadFile(ap)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		snap, err := standalone.Parse(data)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", ap, err)
			return 1
		}
		if _, err := (&router.Builder{}).Build(snap); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", ap, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: ok (%d routes)\n", ap, len(snap.Routes))
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return 0
}

// standalonePath is conf/apisix.yaml beside the config file (APISIX's
// standalone layout).
func standalonePath(cfg *conf.Config) string {
	dir := "conf"
	if cfg.Path != "" {
		dir = filepath.Dir(cfg.Path)
	}
	return filepath.Join(dir, "apisix.yaml")
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file (default: built-in defaults)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg, err := conf.Load(*path)
	if err != nil {
		log.Error("config", "err", err)
		return 1
	}
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	if addr := os.Getenv("SLUICE_PPROF"); addr != "" {
		startPprof(addr, log)
	}

	pub := &router.Publisher{OnStore: func(t *router.Table) {
		// a deleted route's series leave the metrics endpoint
		metrics.SetSplitWeights(t.SplitArms)
		if n := metrics.Retain(t.RouteLabels(), t.SplitArms) + prometheus.SweepUpstreamStatus(); n > 0 {
			log.Debug("metrics: dropped series of removed routes, arms and nodes", "series", n)
		}
	}}
	// cpus: what Go may use (affinity and, since Go 1.25, a cgroup CPU
	// limit), read before GOMAXPROCS is raised for the spare P.
	cpus := runtime.GOMAXPROCS(0)
	loops := cfg.WorkerProcesses
	if loops <= 0 {
		loops = cpus
	}
	if p := spareProc(loops, cpus); p > 0 {
		runtime.GOMAXPROCS(p)
		log.Info("GOMAXPROCS raised so an idle event loop never holds the last P", "loops", loops, "gomaxprocs", p)
	}
	if cfg.BusyPoll > 0 {
		log.Info("busy polling: each event loop keeps its core busy for up to busy_poll after its last socket event",
			"busy_poll", fmt.Sprintf("%dus", cfg.BusyPoll.Microseconds()), "loops", loops, "cpus", cpus)
		if loops > cpus {
			log.Warn("busy_poll with more event loops than CPUs (affinity or cgroup limit): spinning loops take turns on a core, or exhaust a CPU quota, and add latency instead of saving it",
				"loops", loops, "cpus", cpus)
		}
	}
	builder := &router.Builder{Loops: loops, PluginAttr: pluginAttr(cfg)}
	empty, err := builder.Build(model.NewSnapshot())
	if err != nil {
		log.Error("build empty table", "err", err)
		return 1
	}
	pub.Store(empty)

	var watcher *standalone.Watcher
	var adminSrv *admin.Server
	switch cfg.Deployment.ConfigProvider {
	case "yaml":
		ap := standalonePath(cfg)
		rb := &rebuilder{b: builder, pub: pub, log: log}
		watcher = standalone.NewWatcher(ap, time.Second, func(s *model.Snapshot) error {
			t, err := rb.apply(s)
			if err != nil {
				return err
			}
			log.Info("routing table loaded", "file", ap, "routes", len(s.Routes), "generation", t.Generation)
			return nil
		}, func(f string, a ...any) { log.Warn(fmt.Sprintf(f, a...)) })
		if err := watcher.Start(); err != nil {
			log.Error("standalone config", "file", ap, "err", err)
			return 1
		}
		defer watcher.Stop()
		stopDNS := rb.reresolveEvery(dnsRefresh)
		defer stopDNS()
	default:
		// embedded | etcd: the store holds the configuration; the admin
		// package's builder loads it, publishes it and follows its changes,
		// and serves the Admin API unless enable_admin is false.
		st, err := admin.OpenStore(context.Background(), cfg, log)
		if err != nil {
			log.Error("config store", "provider", cfg.Deployment.ConfigProvider, "err", err)
			return 1
		}
		defer st.Close()
		adminSrv, err = admin.New(cfg, st, pub, builder, log, admin.WithVersion(version))
		if err == nil && cfg.Apisix.EnableAdmin {
			err = adminSrv.Start()
		} else if err == nil {
			err = adminSrv.StartBuilder() // routes from the store, no Admin API
		}
		if err != nil {
			log.Error("admin", "err", err)
			return 1
		}
		defer adminSrv.Shutdown(context.Background())
		if cfg.Apisix.EnableAdmin && cfg.Deployment.Admin.KeyCreated {
			if k := admin.GeneratedKey(cfg); k != "" {
				fmt.Fprintf(stderr, "admin key: %s\n  Admin API: http://%s (printed once; kept in %s)\n",
					k, adminSrv.Addr(), cfg.Deployment.Admin.KeyFile)
			}
		}
	}

	listen := make([]string, 0, len(cfg.Apisix.NodeListen))
	for _, a := range cfg.Apisix.NodeListen {
		listen = append(listen, net.JoinHostPort(a.IP, strconv.Itoa(a.Port)))
	}
	tlsDialer, err := sltls.NewDialer(cfg.Apisix.SSL.SSLTrustedCertificate)
	if err != nil {
		log.Error("apisix.ssl.ssl_trusted_certificate", "err", err)
		return 1
	}
	alog, err := openAccessLog(cfg, loops, log)
	if err != nil {
		log.Error("access log", "err", err)
		return 1
	}
	defer alog.Close() // idempotent; covers early returns
	srv := engine.New(engine.Options{
		AccessLog:        alog,
		TLS:              tlsDialer,
		Listen:           listen,
		Loops:            loops,
		Publisher:        pub,
		Version:          version,
		MaxHead:          cfg.HTTP.LargeClientHeaderBuffers,
		MaxBody:          cfg.HTTP.ClientMaxBodySize,
		HeaderTimeout:    cfg.HTTP.ClientHeaderTimeout,
		BodyTimeout:      cfg.HTTP.ClientBodyTimeout,
		KeepaliveTimeout: cfg.HTTP.KeepaliveTimeout,
		SendTimeout:      cfg.HTTP.SendTimeout,
		MaxBuffered:      maxBuffered(cfg.HTTP.ProxyBusyBuffersSize),
		BusyPoll:         cfg.BusyPoll,
		Logger:           log,
	})
	if err := srv.Start(); err != nil {
		log.Error("data plane", "err", err)
		return 1
	}
	metrics.SetConnStats(func() metrics.Conns {
		st := srv.ConnStats()
		return metrics.Conns{Active: st.Open, Accepted: st.Accepted, Handled: st.Accepted,
			Writing: st.Writing, Waiting: max(st.Open-st.Writing, 0), Requests: st.Requests}
	})
	// APISIX serves the metrics on plugin_attr.prometheus.export_addr; a
	// port already taken is logged, not fatal (the data plane is up).
	if stopMetrics, err := startMetrics(cfg, version, log); err != nil {
		log.Error("prometheus export server", "err", err)
	} else {
		defer stopMetrics()
	}
	log.Info("sluice started", "version", version, "listen", listen, "provider", cfg.Deployment.ConfigProvider)

	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1)
	for s := range sig {
		if s == syscall.SIGUSR1 { // logrotate: mv logs/access.log ...; kill -USR1 <pid>
			if err := alog.Reopen(); err != nil {
				log.Error("access log reopen", "err", err)
			} else {
				log.Info("SIGUSR1: access log reopened")
			}
			continue
		}
		if s == syscall.SIGHUP {
			if watcher != nil {
				watcher.Reload()
				log.Info("SIGHUP: reloaded " + standalonePath(cfg))
			} else {
				log.Info("SIGHUP: nothing to reload")
			}
			continue
		}
		log.Info("draining", "signal", s.String(), "in_flight", srv.Active(), "grace", drainGrace.String())
		ctx, cancel := context.WithTimeout(context.Background(), drainGrace)
		err := srv.Shutdown(ctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			log.Error("shutdown", "err", err)
		} else if err != nil {
			log.Warn("grace period over; requests cut", "in_flight", srv.Active())
		}
		if err := alog.Close(); err != nil {
			log.Warn("access log close", "err", err)
		}
		if adminSrv != nil {
			actx, acancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := adminSrv.Shutdown(actx); err != nil {
				log.Warn("admin API shutdown", "err", err)
			}
			acancel()
		}
		log.Info("stopped")
		return 0
	}
	return 0
}

// maxBuffered maps proxy_busy_buffers_size (0 = no cap) to the engine's
// MaxBuffered (-1 = no cap).
func maxBuffered(size int64) int {
	if size <= 0 {
		return -1
	}
	return int(size)
}

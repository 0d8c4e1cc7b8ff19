package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"k8s.io/component-base/version"
)

const (
	etcdTimeout   = 10 * time.Second
	etcdRetry     = 200 * time.Millisecond
	readyDelay    = time.Second // /readyz fails this long after listening
	shutdownGrace = 5 * time.Second
)

// logf writes a klog-shaped line (`I0102 15:04:05.000000   pid file:line] msg`) to stderr.
func logf(severity byte, format string, args ...interface{}) {
	_, file, line, ok := runtime.Caller(1)
	if !ok {
		file, line = "???", 0
	}
	fmt.Fprintf(os.Stderr, "%c%s %7d %s:%d] %s\n", severity, time.Now().Format("0102 15:04:05.000000"),
		os.Getpid(), filepath.Base(file), line, fmt.Sprintf(format, args...))
}

func run(o *serverOptions, openapiDefs int) error {
	etcd, errs := o.validate()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	tokens, err := loadTokenFile(o.tokenAuthFile)
	if err != nil {
		return err
	}
	logf('I', "Version: %s", version.Get().GitVersion)
	logf('I', "loaded %d OpenAPI definitions, %d bearer token(s)", openapiDefs, len(tokens))

	if err := waitForEtcd(etcd); err != nil {
		return err
	}

	cert, err := servingCert(o.certDir, o.advertiseAddress)
	if err != nil {
		return err
	}

	addr := net.JoinHostPort(o.bindAddress, fmt.Sprint(o.securePort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("failed to listen on %s: %v", addr, err)
	}
	s := &apiServer{tokens: tokens, store: newStore(), started: time.Now()}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"h2", "http/1.1"},
		},
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(ln, "", "") }()
	logf('I', "Serving securely on %s", addr)

	select {
	case err := <-served:
		return fmt.Errorf("serving on %s: %v", addr, err)
	case <-ctx.Done():
	}
	stop()
	logf('I', "Received signal, shutting down gracefully")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logf('W', "graceful shutdown: %v", err)
	}
	logf('I', "Stopped listening on %s", addr)
	return nil
}

// waitForEtcd polls <etcd>/health until it answers 200 (the real server's
// storage factory fails to start when etcd is not there).
func waitForEtcd(etcd *url.URL) error {
	health := etcd.JoinPath("health").String()
	client := &http.Client{}
	deadline := time.Now().Add(etcdTimeout)
	var last error
	for {
		client.Timeout = time.Second
		if left := time.Until(deadline); left < client.Timeout {
			client.Timeout = left + time.Millisecond // never 0 (no timeout)
		}
		resp, err := client.Get(health)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				logf('I', "etcd %s is healthy", etcd.Redacted())
				return nil
			}
			err = fmt.Errorf("GET %s: %s", health, resp.Status)
		}
		last = err
		if time.Now().Add(etcdRetry).After(deadline) {
			break
		}
		time.Sleep(etcdRetry)
	}
	logf('E', "etcd health check did not pass within %s: %v", etcdTimeout, last)
	return fmt.Errorf("etcd %s unreachable", etcd.Redacted())
}

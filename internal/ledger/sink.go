package ledger

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the request body, keyed with
// the sink's key.
const SignatureHeader = "X-Driftless-Signature"

// Notification is the body the sink POSTs: a batch of records, oldest first.
type Notification struct {
	// Records are the ledger records of the batch.
	Records []Record `json:"records"`
}

// Sign returns the value of SignatureHeader for body under key.
func Sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature reports whether header is the signature of body under key, in constant
// time.
func VerifySignature(key, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(key, body)), []byte(header))
}

// Delivery bounds.
const (
	// maxBatch is how many records one delivery carries at most.
	maxBatch = 100
	// minBackoff is the first wait after a failed delivery; it doubles up to MaxBackoff.
	minBackoff = 500 * time.Millisecond
	// maxKeyBytes bounds the key file.
	maxKeyBytes = 64 << 10
)

// sink delivers ledger records to an HTTPS webhook from a bounded queue. Enqueueing never
// blocks: a full queue drops the new records and counts them.
type sink struct {
	url        string
	keyFile    string
	client     *http.Client
	queueSize  int
	maxBackoff time.Duration
	metrics    *Metrics

	mu    sync.Mutex
	queue []Record
	wake  chan struct{}
}

// newSink returns the sink the settings describe; it checks the CA and key files now.
func newSink(s *v1alpha1.LedgerSink, m *Metrics) (*sink, error) {
	if m == nil {
		return nil, errors.New("new ledger sink: metrics are required")
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ledger sink caFile: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ledger sink caFile %s: no PEM certificate", s.CAFile)
		}
		tlsConfig.RootCAs = pool
	}
	if _, err := readKey(s.KeyFile); err != nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	transport.Proxy = http.ProxyFromEnvironment
	return &sink{
		url: s.URL, keyFile: s.KeyFile, queueSize: s.QueueSize, maxBackoff: s.MaxBackoff.Duration, metrics: m,
		client: &http.Client{Transport: transport, Timeout: s.Timeout.Duration,
			// A redirect would send the signed records somewhere else.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		wake: make(chan struct{}, 1),
	}, nil
}

// readKey reads the HMAC key, without a trailing newline.
func readKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ledger sink keyFile: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("ledger sink keyFile %s: %w", path, err)
	}
	b = bytes.TrimRight(b, "\r\n")
	switch {
	case len(b) == 0:
		return nil, fmt.Errorf("ledger sink keyFile %s is empty", path)
	case len(b) > maxKeyBytes:
		return nil, fmt.Errorf("ledger sink keyFile %s is larger than %d bytes", path, maxKeyBytes)
	}
	return b, nil
}

// enqueue adds records to the delivery queue, dropping (and counting) what does not fit.
func (s *sink) enqueue(recs []Record) {
	if s == nil || len(recs) == 0 {
		return
	}
	s.mu.Lock()
	room := s.queueSize - len(s.queue)
	dropped := 0
	if len(recs) > room {
		dropped = len(recs) - max(room, 0)
		recs = recs[:max(room, 0)]
	}
	s.queue = append(s.queue, recs...)
	n := len(s.queue)
	s.mu.Unlock()
	s.metrics.sinkQueue.Set(float64(n))
	if dropped > 0 {
		s.metrics.sinkRecords.WithLabelValues(outcomeQueueFull).Add(float64(dropped))
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run delivers queued records until ctx is done, oldest first, retrying a failed batch with
// exponential backoff.
func (s *sink) run(ctx context.Context, log logr.Logger) {
	backoff := time.Duration(0)
	for {
		s.mu.Lock()
		batch := append([]Record(nil), s.queue[:min(len(s.queue), maxBatch)]...)
		s.mu.Unlock()
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
				continue
			}
		}
		err := s.deliver(ctx, batch)
		var rejected *rejectedError
		switch {
		case err == nil:
			s.metrics.sinkBatches.WithLabelValues(outcomeDelivered).Inc()
			s.metrics.sinkRecords.WithLabelValues(outcomeDelivered).Add(float64(len(batch)))
			s.pop(len(batch))
			backoff = 0
			continue
		case errors.As(err, &rejected):
			log.Error(err, "ledger sink rejected records; dropping them", "records", len(batch))
			s.metrics.sinkBatches.WithLabelValues(outcomeRejected).Inc()
			s.metrics.sinkRecords.WithLabelValues(outcomeRejected).Add(float64(len(batch)))
			s.pop(len(batch))
			continue
		}
		if ctx.Err() != nil {
			return
		}
		s.metrics.sinkBatches.WithLabelValues(outcomeFailed).Inc()
		backoff = min(max(2*backoff, minBackoff), s.maxBackoff)
		wait := backoff - time.Duration(rand.Int64N(int64(backoff)/5+1))
		log.Info("ledger sink delivery failed; retrying", "error", err.Error(), "records", len(batch), "retryIn", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (s *sink) pop(n int) {
	s.mu.Lock()
	s.queue = append(s.queue[:0], s.queue[n:]...)
	left := len(s.queue)
	s.mu.Unlock()
	s.metrics.sinkQueue.Set(float64(left))
}

// rejectedError is a 4xx answer other than 408 and 429: sending the same body again would
// get the same answer.
type rejectedError struct{ status int }

func (e *rejectedError) Error() string { return fmt.Sprintf("sink answered %d", e.status) }

// deliver POSTs one signed batch.
func (s *sink) deliver(ctx context.Context, batch []Record) error {
	key, err := readKey(s.keyFile)
	if err != nil {
		return err
	}
	body, err := json.Marshal(Notification{Records: batch})
	if err != nil {
		return fmt.Errorf("encode notification: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("ledger sink request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "driftless")
	req.Header.Set(SignatureHeader, Sign(key, body))
	resp, err := s.client.Do(req)
	if err != nil {
		// The URL may carry a token in its path or query: name the host only.
		return fmt.Errorf("post to ledger sink %s: %w", req.URL.Host, unwrapURLError(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		return &rejectedError{status: resp.StatusCode}
	}
	return fmt.Errorf("ledger sink %s answered %d", req.URL.Host, resp.StatusCode)
}

// unwrapURLError drops the URL a *url.Error repeats.
func unwrapURLError(err error) error {
	if u, ok := errors.AsType[*url.Error](err); ok {
		return u.Err
	}
	return err
}

package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"time"
)

// artifacts collects what a person needs to understand a failed scenario.
func (r *runner) artifacts() map[string][]byte {
	out := map[string][]byte{}
	for _, d := range r.devices {
		var b bytes.Buffer
		if err := d.proxy.WriteTranscript(&b); err == nil {
			out["transcript-"+d.name+".txt"] = b.Bytes()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if v, err := d.dev.View(ctx); err == nil {
			out["replica-"+d.name+".json"] = mustJSON(v)
		}
		cancel()
		// An external engine's output and configuration (never its password).
		if a, ok := d.dev.(interface{ Artifacts() map[string][]byte }); ok {
			for name, b := range a.Artifacts() {
				out[name] = b
			}
		}
	}
	var hist bytes.Buffer
	enc := json.NewEncoder(&hist)
	r.mu.Lock()
	for _, op := range r.history {
		_ = enc.Encode(op) // encoding plain structs cannot fail
	}
	r.mu.Unlock()
	out["history.jsonl"] = hist.Bytes()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if st, err := r.server.State(ctx); err == nil {
		out["server.json"] = mustJSON(st)
	}
	return out
}

func mustJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return []byte(`{"error":` + string(mustQuote(err.Error())) + `}`)
	}
	return b
}

func mustQuote(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/api/client"
)

// clientFlags are the connection and output flags of the API client
// commands (get, describe, apply, scale, status). Precedence: flag, then
// environment (IMS_ORCH_SERVER, IMS_ORCH_TOKEN, IMS_ORCH_CA_FILE), then the
// context file (--context-file, IMS_ORCH_CONTEXT, default
// ~/.config/ims-orch/context.yaml), then http://127.0.0.1:8080.
type clientFlags struct {
	server, token, caFile, contextFile, output string
	timeout                                    time.Duration
}

var cliOpts clientFlags

// contextFile is the client context file.
type contextFile struct {
	Server string `yaml:"server"`
	Token  string `yaml:"token"`
	CAFile string `yaml:"caFile"`
}

func addClientFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&cliOpts.server, "server", "", "API base URL (env IMS_ORCH_SERVER; default http://127.0.0.1:8080)")
	f.StringVar(&cliOpts.token, "token", "", "bearer token (env IMS_ORCH_TOKEN)")
	f.StringVar(&cliOpts.caFile, "ca-file", "", "PEM CA bundle to verify the server (env IMS_ORCH_CA_FILE)")
	f.StringVar(&cliOpts.contextFile, "context-file", "", "context file with server, token and caFile (env IMS_ORCH_CONTEXT; default ~/.config/ims-orch/context.yaml)")
	f.StringVarP(&cliOpts.output, "output", "o", "table", "output format: table, json or yaml")
	f.DurationVar(&cliOpts.timeout, "timeout", 30*time.Second, "request timeout")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func checkOutput() error {
	switch cliOpts.output {
	case "table", "json", "yaml":
		return nil
	}
	return usageErr(fmt.Errorf("--output %q: want table, json or yaml", cliOpts.output))
}

// newClient builds the API client from flags, environment and context file.
func newClient() (*client.Client, error) {
	if err := checkOutput(); err != nil {
		return nil, err
	}
	var ctx contextFile
	path := first(cliOpts.contextFile, os.Getenv("IMS_ORCH_CONTEXT"))
	explicit := path != ""
	if path == "" {
		if dir, err := os.UserConfigDir(); err == nil {
			path = filepath.Join(dir, "ims-orch", "context.yaml")
		}
	}
	if path != "" {
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			dec := yaml.NewDecoder(bytes.NewReader(data))
			dec.KnownFields(true)
			if err := dec.Decode(&ctx); err != nil && !errors.Is(err, io.EOF) {
				return nil, usageErr(fmt.Errorf("context file %s: %w", path, err))
			}
		case explicit || !errors.Is(err, os.ErrNotExist):
			return nil, usageErr(fmt.Errorf("context file: %w", err))
		}
	}
	server := first(cliOpts.server, os.Getenv("IMS_ORCH_SERVER"), ctx.Server, "http://127.0.0.1:8080")
	opts := []client.Option{client.WithTimeout(cliOpts.timeout)}
	if tok := first(cliOpts.token, os.Getenv("IMS_ORCH_TOKEN"), ctx.Token); tok != "" {
		opts = append(opts, client.WithToken(tok))
	}
	if ca := first(cliOpts.caFile, os.Getenv("IMS_ORCH_CA_FILE"), ctx.CAFile); ca != "" {
		pool, err := api.LoadCertPool(ca)
		if err != nil {
			return nil, usageErr(fmt.Errorf("--ca-file: %w", err))
		}
		opts = append(opts, client.WithTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	}
	c, err := client.New(server, opts...)
	if err != nil {
		return nil, usageErr(err)
	}
	return c, nil
}

// emit prints v as JSON or YAML, or calls table for the table format.
func emit(w io.Writer, v any, table func(io.Writer) error) error {
	switch cliOpts.output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		// through JSON so that the field names are the API's
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		var generic any
		if err := json.Unmarshal(b, &generic); err != nil {
			return err
		}
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(generic); err != nil {
			return err
		}
		return enc.Close()
	}
	return table(w)
}

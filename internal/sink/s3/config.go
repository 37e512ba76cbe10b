package s3

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// config is where and as whom the client talks to S3, resolved the way
// the AWS CLI and SDKs resolve it:
//
//   - credentials: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+
//     AWS_SESSION_TOKEN); else the profile (AWS_PROFILE, else
//     AWS_DEFAULT_PROFILE, else "default") in the shared credentials file
//     (AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials), then in the
//     config file (AWS_CONFIG_FILE, else ~/.aws/config). Static keys
//     only: a profile that needs role_arn, SSO or credential_process is
//     refused with what to do instead.
//   - region: AWS_REGION, AWS_DEFAULT_REGION, the profile's region, else
//     us-east-1 (what S3-compatible servers expect by default).
//   - endpoint: the explicit one (sink.Options.Endpoint), then
//     AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's services
//     section (s3 = endpoint_url = ...), the profile's endpoint_url; the
//     configured ones are skipped when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS
//     is true. Without any, AWS's own endpoint for the region. A custom
//     endpoint is addressed path-style (http://host/bucket/key), which
//     every S3-compatible server understands; http:// is allowed, for
//     local servers.
type config struct {
	host         string // endpoint host[:port]; "" is AWS's own
	secure       bool
	endpoint     string // the endpoint URL, for messages
	endpointFrom string // where it was set ("" for AWS's default)
	region       string

	access, secret, token string
	credsFrom             string // where the credentials came from, for messages
	anonymous             bool   // no credentials (allowed only for reading)
}

// custom reports whether the endpoint is not AWS's own.
func (c *config) custom() bool { return c.host != "" }

// environ looks up an environment variable ("" when unset).
type environ func(string) string

// maxConfigFile bounds the AWS config and credentials files read: real
// ones are a few KiB.
const maxConfigFile = 1 << 20

// resolveConfig builds the config from the environment, the AWS files
// and the explicit endpoint. needCreds refuses to go on without
// credentials (writing); readers may go anonymous.
func resolveConfig(getenv environ, explicitEndpoint string, needCreds bool) (*config, error) {
	c := &config{}
	profileName, profileSet := getenv("AWS_PROFILE"), true
	if profileName == "" {
		profileName = getenv("AWS_DEFAULT_PROFILE")
	}
	if profileName == "" {
		profileName, profileSet = "default", false
	}
	home := getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	credFile := getenv("AWS_SHARED_CREDENTIALS_FILE")
	if credFile == "" && home != "" {
		credFile = filepath.Join(home, ".aws", "credentials")
	}
	confFile := getenv("AWS_CONFIG_FILE")
	if confFile == "" && home != "" {
		confFile = filepath.Join(home, ".aws", "config")
	}
	creds, err := readINIFile(credFile)
	if err != nil {
		return nil, err
	}
	conf, err := readINIFile(confFile)
	if err != nil {
		return nil, err
	}
	credSec := creds[profileName]
	confSec := conf["profile "+profileName]
	if confSec == nil && profileName == "default" {
		confSec = conf["default"]
	}
	if profileSet && credSec == nil && confSec == nil {
		return nil, fmt.Errorf("AWS profile %q is in neither %s nor %s; check AWS_PROFILE, or create it with `aws configure --profile %s`", profileName, credFile, confFile, profileName)
	}

	// Credentials.
	envKey, envSecret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	switch {
	case envKey != "" && envSecret != "":
		c.access, c.secret = envKey, envSecret
		c.token = getenv("AWS_SESSION_TOKEN")
		if c.token == "" {
			c.token = getenv("AWS_SECURITY_TOKEN")
		}
		c.credsFrom = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
	case envKey != "":
		return nil, errors.New("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both (or neither, to use a profile)")
	case envSecret != "":
		return nil, errors.New("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not; set both (or neither, to use a profile)")
	default:
		for _, src := range []struct {
			sec  map[string]string
			file string
		}{{credSec, credFile}, {confSec, confFile}} {
			if src.sec == nil {
				continue
			}
			k, s := src.sec["aws_access_key_id"], src.sec["aws_secret_access_key"]
			if k == "" && s == "" {
				continue
			}
			if k == "" || s == "" {
				return nil, fmt.Errorf("AWS profile %q in %s has only one of aws_access_key_id and aws_secret_access_key; it needs both", profileName, src.file)
			}
			c.access, c.secret, c.token = k, s, src.sec["aws_session_token"]
			c.credsFrom = fmt.Sprintf("profile %q in %s", profileName, src.file)
			break
		}
	}
	if c.access == "" {
		for _, sec := range []map[string]string{credSec, confSec} {
			for _, k := range []string{"role_arn", "credential_process", "sso_session", "sso_start_url", "web_identity_token_file"} {
				if sec[k] != "" {
					return nil, fmt.Errorf("AWS profile %q gets its credentials through %s, which zwrite does not support; export static ones first (eval \"$(aws configure export-credentials --profile %s --format env)\")", profileName, k, profileName)
				}
			}
		}
		if needCreds {
			return nil, fmt.Errorf("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE naming a profile with aws_access_key_id and aws_secret_access_key in %s", credFile)
		}
		c.anonymous = true
		c.credsFrom = "no credentials (anonymous)"
	}

	// Region.
	c.region = firstOf(getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION"), confSec["region"], credSec["region"], "us-east-1")

	// Endpoint.
	type candidate struct{ value, from string }
	cands := []candidate{{explicitEndpoint, "the endpoint given"}}
	if !isTrue(getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) && !isTrue(confSec["ignore_configured_endpoint_urls"]) {
		cands = append(cands,
			candidate{getenv("AWS_ENDPOINT_URL_S3"), "AWS_ENDPOINT_URL_S3"},
			candidate{getenv("AWS_ENDPOINT_URL"), "AWS_ENDPOINT_URL"})
		if svc := confSec["services"]; svc != "" {
			cands = append(cands, candidate{conf["services "+svc]["s3.endpoint_url"], fmt.Sprintf("the services section %q of %s", svc, confFile)})
		}
		cands = append(cands,
			candidate{confSec["s3.endpoint_url"], fmt.Sprintf("profile %q (s3 endpoint_url) in %s", profileName, confFile)},
			candidate{confSec["endpoint_url"], fmt.Sprintf("profile %q (endpoint_url) in %s", profileName, confFile)})
	}
	for _, cd := range cands {
		if cd.value == "" {
			continue
		}
		host, secure, err := parseEndpoint(cd.value)
		if err != nil {
			return nil, fmt.Errorf("S3 endpoint %q (from %s): %w", cd.value, cd.from, err)
		}
		c.host, c.secure, c.endpoint, c.endpointFrom = host, secure, strings.TrimSuffix(cd.value, "/"), cd.from
		break
	}
	if c.host == "" {
		c.secure = true
		c.endpoint = "https://s3." + c.region + ".amazonaws.com"
	}
	return c, nil
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func isTrue(s string) bool {
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	return err == nil && b
}

// parseEndpoint checks an endpoint URL: http:// or https://, a host, and
// no path (S3 servers are addressed at their root).
func parseEndpoint(s string) (host string, secure bool, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", false, errors.New("want a URL such as http://localhost:7070 or https://s3.example.com")
	}
	switch u.Scheme {
	case "http":
	case "https":
		secure = true
	default:
		return "", false, errors.New("want a URL starting with http:// or https://, such as http://localhost:7070")
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", false, errors.New("no host: want a URL such as http://localhost:7070")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return "", false, errors.New("want only scheme, host and port (an S3 server is addressed at its root)")
	}
	return u.Host, secure, nil
}

// readINIFile parses an AWS config or credentials file; a missing file is
// empty.
func readINIFile(name string) (map[string]map[string]string, error) {
	if name == "" {
		return nil, nil
	}
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read AWS settings: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigFile+1))
	if err != nil {
		return nil, fmt.Errorf("read AWS settings %s: %w", name, err)
	}
	if len(b) > maxConfigFile {
		return nil, fmt.Errorf("read AWS settings %s: larger than %d KiB, which no AWS settings file is", name, maxConfigFile>>10)
	}
	m, err := parseINI(b)
	if err != nil {
		return nil, fmt.Errorf("AWS settings %s: %w", name, err)
	}
	return m, nil
}

// parseINI parses the INI dialect of the AWS config and credentials
// files: [section] headers, "key = value" (or "key: value") lines, full
// line comments starting with # or ;, keys case-insensitive. A key with
// an empty value followed by indented lines is a nested block (s3 =
// / endpoint_url = ...): its keys are stored as "s3.endpoint_url". A
// section named twice merges, a key named twice keeps the last value.
func parseINI(b []byte) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	var sec map[string]string
	nest := "" // the key whose indented block follows
	text := strings.TrimPrefix(string(b), "\ufeff")
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSuffix(line, "\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || trimmed[0] == '#' || trimmed[0] == ';' {
			continue
		}
		indented := line[0] == ' ' || line[0] == '\t'
		if trimmed[0] == '[' {
			if !strings.HasSuffix(trimmed, "]") {
				return nil, fmt.Errorf("line %d: section header %q has no closing ]", i+1, trimmed)
			}
			name := strings.Join(strings.Fields(trimmed[1:len(trimmed)-1]), " ")
			if name == "" {
				return nil, fmt.Errorf("line %d: empty section name", i+1)
			}
			if out[name] == nil {
				out[name] = map[string]string{}
			}
			sec, nest = out[name], ""
			continue
		}
		at := strings.IndexAny(trimmed, "=:")
		if at < 0 {
			return nil, fmt.Errorf("line %d: want key = value, got %q", i+1, trimmed)
		}
		key := strings.ToLower(strings.TrimSpace(trimmed[:at]))
		val := strings.TrimSpace(trimmed[at+1:])
		if key == "" {
			return nil, fmt.Errorf("line %d: no key before %q", i+1, trimmed[at:at+1])
		}
		if sec == nil {
			return nil, fmt.Errorf("line %d: %q comes before any [section]", i+1, trimmed)
		}
		if indented && nest != "" {
			sec[nest+"."+key] = val
			continue
		}
		sec[key] = val
		nest = ""
		if val == "" {
			nest = key
		}
	}
	return out, nil
}

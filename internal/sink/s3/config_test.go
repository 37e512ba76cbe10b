package s3

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/zwrite/zwrite/internal/sink"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		name, url      string
		bucket, prefix string
		err            string
	}{
		{"bucket root", "s3://bkt", "bkt", "", ""},
		{"bucket root slash", "s3://bkt/", "bkt", "", ""},
		{"prefix", "s3://bkt/a/b.zarr", "bkt", "a/b.zarr", ""},
		{"trailing slash", "s3://bkt/a/b.zarr/", "bkt", "a/b.zarr", ""},
		{"escaped", "s3://bkt/a%20b", "bkt", "a b", ""},
		{"dots in bucket", "s3://my.bucket-1/x", "my.bucket-1", "x", ""},
		{"no bucket", "s3:///x", "", "", "no bucket"},
		{"short bucket", "s3://ab/x", "", "", "bucket name"},
		{"bad bucket", "s3://a_b!/x", "", "", "bucket name"},
		{"port", "s3://bkt:9000/x", "", "", "names a bucket, not a server"},
		{"user", "s3://key:secret@bkt/x", "", "", "no user name"},
		{"query", "s3://bkt/x?versionId=1", "", "", "no query"},
		{"fragment", "s3://bkt/x#y", "", "", "no query or fragment"},
		{"dotdot", "s3://bkt/a/../b", "", "", "clean key"},
		{"double slash", "s3://bkt/a//b", "", "", "clean key"},
		{"dot", "s3://bkt/./b", "", "", "clean key"},
		{"opaque", "s3:bkt/x", "", "", "two slashes"},
		{"other scheme", "gs://bkt/x", "", "", "want an s3://"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseTarget(u)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseTarget(%q) = %+v, %v; want an error with %q", tc.url, got, err, tc.err)
				}
				return
			}
			if err != nil || got.bucket != tc.bucket || got.prefix != tc.prefix {
				t.Fatalf("parseTarget(%q) = %+v, %v; want bucket %q prefix %q", tc.url, got, err, tc.bucket, tc.prefix)
			}
		})
	}
}

// FuzzParseTarget: no input panics; an accepted URL has a valid bucket
// and a clean prefix, and formats back to a URL that parses the same.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"s3://bkt/a/b", "s3://bkt", "s3://b.c-d/x%2Fy/", "s3://bkt/a//b", "s3://:@/", "s3://bkt/..", "s3://bkt/a?b#c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := url.Parse(s)
		if err != nil {
			return
		}
		tg, err := parseTarget(u)
		if err != nil {
			return
		}
		if tg.bucket == "" || strings.ContainsAny(tg.bucket, "/:@?#") {
			t.Fatalf("%q: bad bucket %q accepted", s, tg.bucket)
		}
		if tg.prefix != "" && sink.CheckKey(tg.prefix) != nil {
			t.Fatalf("%q: unclean prefix %q accepted", s, tg.prefix)
		}
		back := (&url.URL{Scheme: "s3", Host: tg.bucket, Path: "/" + tg.prefix}).String()
		u2, err := url.Parse(back)
		if err != nil {
			t.Fatalf("%q: formatted %q does not parse: %v", s, back, err)
		}
		tg2, err := parseTarget(u2)
		if err != nil || tg2 != tg {
			t.Fatalf("%q: formatted %q parses to %+v, %v; want %+v", s, back, tg2, err, tg)
		}
	})
}

func TestParseINI(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string]map[string]string
		err      string
	}{
		{"basic", "[default]\naws_access_key_id = AK\naws_secret_access_key=SK\n",
			map[string]map[string]string{"default": {"aws_access_key_id": "AK", "aws_secret_access_key": "SK"}}, ""},
		{"comments crlf bom", "\ufeff# top\r\n[profile dev]\r\n; note\r\nregion = eu-west-1\r\n",
			map[string]map[string]string{"profile dev": {"region": "eu-west-1"}}, ""},
		{"colon and case", "[x]\nRegion: us-west-2\nendpoint_url = http://h:9000\n",
			map[string]map[string]string{"x": {"region": "us-west-2", "endpoint_url": "http://h:9000"}}, ""},
		{"nested", "[profile p]\ns3 =\n  endpoint_url = http://l:7070\n  addressing_style = path\nregion = r\n",
			map[string]map[string]string{"p": nil, "profile p": {"s3": "", "s3.endpoint_url": "http://l:7070", "s3.addressing_style": "path", "region": "r"}}, ""},
		{"merge and last wins", "[a]\nk = 1\n[b]\nk = 2\n[a]\nk = 3\nj = 4\n",
			map[string]map[string]string{"a": {"k": "3", "j": "4"}, "b": {"k": "2"}}, ""},
		{"spaces in header", "[  profile   dev  ]\nk=v\n",
			map[string]map[string]string{"profile dev": {"k": "v"}}, ""},
		{"value with equals", "[a]\nsecret = ab=cd==\n",
			map[string]map[string]string{"a": {"secret": "ab=cd=="}}, ""},
		{"key outside section", "k = v\n", nil, "before any [section]"},
		{"no delimiter", "[a]\njustaword\n", nil, "want key = value"},
		{"open header", "[a\nk=v\n", nil, "no closing ]"},
		{"empty header", "[ ]\n", nil, "empty section name"},
		{"empty key", "[a]\n= v\n", nil, "no key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseINI([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseINI(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseINI(%q): %v", tc.in, err)
			}
			want := map[string]map[string]string{}
			for k, v := range tc.want {
				if v != nil {
					want[k] = v
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("parseINI(%q) = %v, want %v", tc.in, got, want)
			}
		})
	}
}

// FuzzParseINI: no input panics, and what parses has lower-case, trimmed
// keys and trimmed values in non-empty sections.
func FuzzParseINI(f *testing.F) {
	for _, s := range []string{"[default]\na = b\n", "[p]\ns3 =\n  endpoint_url = x\n", "[", "a=b", "[x]\n\t\tk:v\r\n", "\ufeff[a]\n;c\n#d\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseINI(b)
		if err != nil {
			return
		}
		for sec, kv := range m {
			if sec == "" || strings.TrimSpace(sec) != sec {
				t.Fatalf("section %q", sec)
			}
			for k, v := range kv {
				if k == "" || strings.ToLower(k) != k || strings.TrimSpace(v) != v {
					t.Fatalf("section %q: key %q value %q", sec, k, v)
				}
			}
		}
	})
}

func TestResolveConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	creds := write("credentials", "[default]\naws_access_key_id = DK\naws_secret_access_key = DS\n"+
		"[dev]\naws_access_key_id = VK\naws_secret_access_key = VS\naws_session_token = VT\n"+
		"[half]\naws_access_key_id = HK\n")
	conf := write("config", "[default]\nregion = eu-central-1\n"+
		"[profile dev]\nregion = ap-south-1\nendpoint_url = http://dev-global:1\nservices = local\n"+
		"[services local]\ns3 =\n  endpoint_url = http://dev-s3:7070\n"+
		"[profile inconf]\naws_access_key_id = CK\naws_secret_access_key = CS\ns3 =\n  endpoint_url = https://nested.example\n"+
		"[profile role]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = default\n"+
		"[profile bad]\naws_access_key_id = BK\naws_secret_access_key = BS\nendpoint_url = localhost:9000\n"+
		"[profile half]\n")
	base := map[string]string{"HOME": dir, "AWS_SHARED_CREDENTIALS_FILE": creds, "AWS_CONFIG_FILE": conf}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name       string
		env        map[string]string
		explicit   string
		read       bool
		access     string
		token      string
		region     string
		endpoint   string // "" = AWS's own
		secure     bool
		credsFrom  string
		err        string
		anonymous  bool
		fromSubstr string
	}{
		{name: "default profile", env: with(), access: "DK", region: "eu-central-1", secure: true, credsFrom: "profile \"default\""},
		{name: "env keys win over profile", env: with("AWS_ACCESS_KEY_ID", "EK", "AWS_SECRET_ACCESS_KEY", "ES", "AWS_SESSION_TOKEN", "ET", "AWS_PROFILE", "dev"),
			access: "EK", token: "ET", region: "ap-south-1", endpoint: "http://dev-s3:7070", credsFrom: "AWS_ACCESS_KEY_ID"},
		{name: "profile dev", env: with("AWS_PROFILE", "dev"), access: "VK", token: "VT", region: "ap-south-1", endpoint: "http://dev-s3:7070", fromSubstr: "services section"},
		{name: "default profile variable", env: with("AWS_DEFAULT_PROFILE", "dev"), access: "VK", token: "VT", region: "ap-south-1", endpoint: "http://dev-s3:7070"},
		{name: "keys in config file, nested endpoint", env: with("AWS_PROFILE", "inconf"), access: "CK", region: "us-east-1", endpoint: "https://nested.example", secure: true, credsFrom: conf},
		{name: "region env wins", env: with("AWS_PROFILE", "dev", "AWS_DEFAULT_REGION", "r2"), access: "VK", token: "VT", region: "r2", endpoint: "http://dev-s3:7070"},
		{name: "AWS_REGION over AWS_DEFAULT_REGION", env: with("AWS_REGION", "r1", "AWS_DEFAULT_REGION", "r2"), access: "DK", region: "r1", secure: true},
		{name: "endpoint env over profile", env: with("AWS_PROFILE", "dev", "AWS_ENDPOINT_URL", "http://env:1"), access: "VK", token: "VT", region: "ap-south-1", endpoint: "http://env:1", fromSubstr: "AWS_ENDPOINT_URL"},
		{name: "s3 endpoint env over generic", env: with("AWS_ENDPOINT_URL", "http://env:1", "AWS_ENDPOINT_URL_S3", "http://envs3:2/"), access: "DK", region: "eu-central-1", endpoint: "http://envs3:2"},
		{name: "explicit over everything", env: with("AWS_ENDPOINT_URL_S3", "http://envs3:2"), explicit: "https://given:443", access: "DK", region: "eu-central-1", endpoint: "https://given:443", secure: true, fromSubstr: "given"},
		{name: "ignore configured endpoints", env: with("AWS_PROFILE", "dev", "AWS_ENDPOINT_URL", "http://env:1", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"), access: "VK", token: "VT", region: "ap-south-1", secure: true},
		{name: "missing profile", env: with("AWS_PROFILE", "nope"), err: `profile "nope" is in neither`},
		{name: "half env keys", env: with("AWS_ACCESS_KEY_ID", "EK"), err: "AWS_SECRET_ACCESS_KEY is not"},
		{name: "half env secret", env: with("AWS_SECRET_ACCESS_KEY", "ES"), err: "AWS_ACCESS_KEY_ID is not"},
		{name: "half profile", env: with("AWS_PROFILE", "half"), err: "only one of aws_access_key_id"},
		{name: "role profile", env: with("AWS_PROFILE", "role"), err: "role_arn, which zwrite does not support"},
		{name: "endpoint without scheme", env: with("AWS_PROFILE", "bad"), err: "starting with http:// or https://"},
		{name: "endpoint with path", env: with("AWS_ENDPOINT_URL", "http://h:1/base"), err: "only scheme, host and port"},
		{name: "no credentials to write", env: map[string]string{"HOME": t.TempDir()}, err: "no S3 credentials"},
		{name: "no credentials to read", env: map[string]string{"HOME": t.TempDir()}, read: true, anonymous: true, region: "us-east-1", secure: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := resolveConfig(func(k string) string { return tc.env[k] }, tc.explicit, !tc.read)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %+v, %v; want an error with %q", c, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.access != tc.access || c.token != tc.token || c.region != tc.region || c.secure != tc.secure || c.anonymous != tc.anonymous {
				t.Errorf("got access %q token %q region %q secure %v anonymous %v; want %q %q %q %v %v", c.access, c.token, c.region, c.secure, c.anonymous, tc.access, tc.token, tc.region, tc.secure, tc.anonymous)
			}
			if tc.endpoint == "" && c.custom() || tc.endpoint != "" && c.endpoint != tc.endpoint {
				t.Errorf("endpoint %q (custom %v), want %q", c.endpoint, c.custom(), tc.endpoint)
			}
			if !strings.Contains(c.credsFrom, tc.credsFrom) || !strings.Contains(c.endpointFrom, tc.fromSubstr) {
				t.Errorf("credentials from %q, endpoint from %q; want %q and %q in them", c.credsFrom, c.endpointFrom, tc.credsFrom, tc.fromSubstr)
			}
		})
	}
}

func TestPartSize(t *testing.T) {
	tests := []struct {
		max  int64
		want int64
		err  bool
	}{
		{0, 8 << 20, false},
		{1, 8 << 20, false},
		{DefaultMaxObjectSize, 8 << 20, false},
		{DefaultMaxObjectSize + 1, 9 << 20, false},
		{100 << 30, 11 << 20, false}, // 10.24 MiB, rounded up
		{1 << 40, 105 << 20, false},
		{maxObjectSize, 525 << 20, false},
		{maxObjectSize + 1, 0, true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.max), func(t *testing.T) {
			got, err := PartSize(tc.max)
			if tc.err {
				if err == nil || !strings.Contains(err.Error(), "smaller shards") {
					t.Fatalf("PartSize(%d) = %d, %v; want an error", tc.max, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("PartSize(%d) = %d, %v; want %d", tc.max, got, err, tc.want)
			}
			if got < minPartSize || got > maxPartSize || got%(1<<20) != 0 || got*maxParts < tc.max {
				t.Fatalf("PartSize(%d) = %d breaks S3's limits", tc.max, got)
			}
		})
	}
}

func TestTransient(t *testing.T) {
	s3err := func(status int, code string) error {
		return minio.ErrorResponse{StatusCode: status, Code: code}
	}
	tests := []struct {
		name      string
		err       error
		transient bool
	}{
		{"503 SlowDown", s3err(503, "SlowDown"), true},
		{"500", s3err(500, "InternalError"), true},
		{"502 no code", s3err(502, ""), true},
		{"429", s3err(429, "TooManyRequests"), true},
		{"400 RequestTimeout", s3err(400, "RequestTimeout"), true},
		{"SlowDown code at 400", s3err(400, "SlowDown"), true},
		{"throttling at 400", s3err(400, "ThrottlingException"), true},
		{"403 AccessDenied", s3err(403, "AccessDenied"), false},
		{"403 bad key", s3err(403, "InvalidAccessKeyId"), false},
		{"404 NoSuchBucket", s3err(404, "NoSuchBucket"), false},
		{"400 EntityTooSmall", s3err(400, "EntityTooSmall"), false},
		{"refused", &url.Error{Op: "Put", URL: "x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}, true},
		{"reset", &url.Error{Op: "Put", URL: "x", Err: syscall.ECONNRESET}, true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"timeout", &timeoutError{}, true},
		{"no such host", &url.Error{Op: "Get", URL: "x", Err: &net.DNSError{Err: "no such host", Name: "h", IsNotFound: true}}, false},
		{"dns temporary", &net.DNSError{Err: "server misbehaving", Name: "h", IsTemporary: true}, true},
		{"other", errors.New("x509: certificate signed by unknown authority"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := transient(tc.err); got != tc.transient {
				t.Fatalf("transient(%v) = %v, want %v", tc.err, got, tc.transient)
			}
		})
	}
}

// FuzzParseEndpoint: no input panics; an accepted endpoint has a host,
// and scheme://host parses back to the same.
func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{"http://localhost:7070", "https://s3.example.com/", "localhost:9000", "http://[::1]:1", "ftp://x", "http://u@h", "http://h/p"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, secure, err := parseEndpoint(s)
		if err != nil {
			return
		}
		if host == "" {
			t.Fatalf("%q: accepted with no host", s)
		}
		scheme := map[bool]string{false: "http://", true: "https://"}[secure]
		h2, s2, err := parseEndpoint(scheme + host)
		if err != nil || h2 != host || s2 != secure {
			t.Fatalf("%q: %s%s parses to %q %v %v", s, scheme, host, h2, s2, err)
		}
	})
}

package s3

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/zwrite/zwrite/internal/sink"
)

// Scheme is the URL scheme this package serves.
const Scheme = "s3"

// target is a parsed s3://BUCKET/PREFIX.
type target struct {
	bucket string
	prefix string // "" (the bucket's root) or a clean key without a trailing "/"
}

// parseTarget checks an s3:// URL: a valid bucket name, and a prefix that
// is a clean key (no "..", no empty or "." segments), or empty.
func parseTarget(u *url.URL) (target, error) {
	if u.Scheme != Scheme {
		return target{}, fmt.Errorf("want an s3:// URL, got scheme %q", u.Scheme)
	}
	if u.Opaque != "" {
		return target{}, errors.New("want s3://BUCKET/PREFIX (two slashes after s3:)")
	}
	if u.User != nil {
		return target{}, errors.New("an s3 URL takes no user name or password; credentials come from the environment (AWS_ACCESS_KEY_ID, AWS_PROFILE)")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return target{}, errors.New("an s3 URL takes no query or fragment (a '?' or '#' in a key is written %3F or %23)")
	}
	if u.Port() != "" || strings.HasSuffix(u.Host, ":") {
		return target{}, errors.New("an s3 URL names a bucket, not a server; the endpoint comes from AWS_ENDPOINT_URL or the explicit endpoint")
	}
	t := target{bucket: u.Host}
	if t.bucket == "" {
		return target{}, errors.New("no bucket: want s3://BUCKET/PREFIX")
	}
	if err := s3utils.CheckValidBucketName(t.bucket); err != nil {
		return target{}, fmt.Errorf("bucket name %q: %s (want 3 to 63 lowercase letters, digits, dots and hyphens)", t.bucket, strings.ToLower(err.Error()[:1])+err.Error()[1:])
	}
	p := strings.TrimPrefix(u.Path, "/")
	p = strings.TrimSuffix(p, "/")
	if p != "" {
		if err := sink.CheckKey(p); err != nil {
			return target{}, fmt.Errorf("prefix %q: want a clean key such as data/run1.zarr (no empty, . or .. parts)", p)
		}
	}
	t.prefix = p
	return t, nil
}

// join is the key of rel under prefix ("" is the prefix itself).
func join(prefix, rel string) string {
	switch {
	case prefix == "":
		return rel
	case rel == "":
		return prefix
	}
	return prefix + "/" + rel
}

// dirPrefix is what keys inside the node at prefix start with.
func dirPrefix(prefix string) string {
	if prefix == "" {
		return ""
	}
	return prefix + "/"
}

// location names bucket and key as a URL for messages.
func location(bucket, key string) string {
	if key == "" {
		return "s3://" + bucket
	}
	return "s3://" + bucket + "/" + key
}

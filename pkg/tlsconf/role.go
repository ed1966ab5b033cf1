package tlsconf

import (
	"crypto/x509"
	"net/url"
	"strings"
)

// RoleURIPrefix starts a URI subject alternative name that carries a
// certificate's role, "urn:nackcast:role:receiver" for instance, for
// issuers that cannot set a Subject OrganizationalUnit (cert-manager's
// csi-driver before v0.8, SPIFFE-style issuers, CA policies that fix the
// subject). The namespace identifier, "nackcast", is compared without
// regard to case, as RFC 8141 says; the role is taken as it is.
const RoleURIPrefix = "urn:nackcast:role:"

// RoleURI returns the URI subject alternative name that gives a
// certificate role.
func RoleURI(role string) *url.URL {
	return &url.URL{Scheme: "urn", Opaque: strings.TrimPrefix(RoleURIPrefix, "urn:") + role}
}

// RoleOf returns the role of a certificate: its first Subject
// OrganizationalUnit, or else the role its URI subject alternative names
// carry (see RoleURIPrefix). It returns "", no role, for a certificate
// that has neither, and for one that names two different roles: an OU and
// a role URI that differ, or two role URIs that differ. Such a
// certificate is allowed only what any certificate of the cloud is.
func RoleOf(c *x509.Certificate) string {
	ou := ""
	if len(c.Subject.OrganizationalUnit) > 0 {
		ou = c.Subject.OrganizationalUnit[0]
	}
	uri := ""
	for _, u := range c.URIs {
		r, ok := roleOfURI(u)
		switch {
		case !ok:
			continue
		case uri != "" && r != uri:
			return ""
		}
		uri = r
	}
	switch {
	case ou != "" && uri != "" && ou != uri:
		return ""
	case ou != "":
		return ou
	default:
		return uri
	}
}

// roleOfURI returns the role that u carries, if it is a role URI
// (urn:nackcast:role:ROLE, ROLE not empty, no query or fragment).
func roleOfURI(u *url.URL) (string, bool) {
	if u == nil || !strings.EqualFold(u.Scheme, "urn") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return "", false
	}
	nid, nss, ok := strings.Cut(u.Opaque, ":")
	if !ok || !strings.EqualFold(nid, "nackcast") {
		return "", false
	}
	role, ok := strings.CutPrefix(nss, "role:")
	if !ok || role == "" {
		return "", false
	}
	return role, true
}

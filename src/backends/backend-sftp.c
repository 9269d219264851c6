/*
 * backend-sftp.c - SFTP destinations with libssh2: sftp://[user@]host[:port]/path.
 *
 * Trust first: the host key is always checked against known_hosts (hashed and [host]:port
 * entries included); an unknown or changed key refuses the connection, and only an unknown one
 * may be added, when asked.  Keys come from --identity, the agent, then ~/.ssh/id_*, in
 * OpenSSH's order; a passphrase only from the file named by JOBPUB_SSH_PASSPHRASE_FILE.
 *
 * Staging writes `.jobpub-<token>.<base>` (0600) beside the final name, in large writes so
 * libssh2 keeps many requests in flight, then fsync@openssh.com where offered and a size check.
 * SFTP v3 rename refuses an existing target (OpenSSH links then unlinks), which is exactly the
 * no-overwrite commit.  A transport failure marks the connection broken; the next stage
 * reconnects, so the core's retry of a file gets a fresh session.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libssh2.h>
#include <libssh2_sftp.h>
#include <openssl/evp.h>

#include "backend.h"
#include "log.h"
#include "sshconfig.h"
#include "util.h"

#define NAME "sftp"
#define READ_CHUNK (1 << 20)

struct sftp_dest {
	struct jp_dest base;
	char *host;        /* as in the URL (an ssh config alias, maybe) */
	char *hostname;    /* where we connect */
	char *user;
	int port;
	char *root;        /* absolute remote path, no trailing '/' */
	char *identity;    /* explicit key: --identity, else the ssh config's; may be NULL */
	char *known_hosts;
	int accept_new_host_key; /* sftp.accept-new-host-key */
	struct jp_dest_opts opts;
	int sock;
	/* Held while sock is taken (disconnect) or shut down from another thread (sftp_cancel),
	 * so the canceller never shuts down a descriptor already closed and reused. */
	pthread_mutex_t sock_lock;
	LIBSSH2_SESSION *session;
	LIBSSH2_SFTP *sftp;
	int broken;        /* transport failed: reconnect before the next stage */
	char *dirs[8];     /* directories known to exist: a job puts many files in few */
	unsigned next_dir;
	char *missing[8];  /* directories known not to exist (before this publish creates them) */
	unsigned next_missing;
};

struct sftp_upload {
	struct jp_upload base;
	LIBSSH2_SFTP_HANDLE *h;
	char *final, *tmp;
	/* the stall rule */
	int64_t window_start;
	uint64_t window_bytes;
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

static void
lib_init(void)
{
	init_rc = libssh2_init(0);
}

static int
oom(struct jp_error *err)
{
	return jp_error_set(err, JP_E_SOFTWARE, NAME ": out of memory");
}

static const char *
home_dir(void)
{
	const char *h = getenv("HOME");
	struct passwd *pw;

	if (h != NULL && h[0] != '\0')
		return h;
	pw = getpwuid(getuid());
	return pw ? pw->pw_dir : "/";
}

/* ---- errors ---- */

static const char *
fx_name(unsigned long fx)
{
	static const char *const names[] = {
		"ok", "end of file", "no such file", "permission denied", "failure", "bad message",
		"no connection", "connection lost", "operation unsupported", "invalid handle",
		"no such path", "file already exists", "write protected", "no media",
		"no space on filesystem", "quota exceeded", "unknown principal", "lock conflict",
		"directory not empty", "not a directory", "invalid filename", "link loop",
	};

	return fx < sizeof(names) / sizeof(names[0]) ? names[fx] : "unknown SFTP status";
}

/*
 * Turns the last libssh2 failure into an error on err.  A transport failure (socket, timeout,
 * disconnect) is JP_E_TEMPFAIL and breaks the connection: JP_FATAL for this session (backend.h),
 * the next stage reconnects.  An SFTP status is JP_FAILED, mapped to its
 * class: permission 77, no space / quota / failure 69 (OpenSSH reports a full disk as
 * "failure"), anything else 69.
 */
static int
fail(struct sftp_dest *d, const char *what, const char *path, struct jp_error *err)
{
	char *msg = NULL;
	int rc = libssh2_session_last_error(d->session, &msg, NULL, 0);

	if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL) {
		unsigned long fx = libssh2_sftp_last_error(d->sftp);
		int code = fx == LIBSSH2_FX_PERMISSION_DENIED || fx == 12 /* write protect */
		               ? JP_E_NOPERM
		               : JP_E_UNAVAILABLE;

		return jp_error_set(err, code, NAME ": %s %s on %s: %s", what, path, d->hostname,
		                    fx_name(fx));
	}
	d->broken = 1;
	/* A dead connection must not make every clean-up call wait for the timeout. */
	if (d->sock >= 0)
		shutdown(d->sock, SHUT_RDWR);
	jp_error_set(err, JP_E_TEMPFAIL, NAME ": %s %s on %s: %s (libssh2 error %d)", what, path,
	             d->hostname, msg && *msg ? msg : "connection failed", rc);
	return JP_FATAL;
}

/* ---- connecting ---- */

/* TCP connect with a time limit. */
static int
tcp_connect(struct sftp_dest *d, struct jp_error *err)
{
	struct addrinfo hints, *res = NULL, *ai;
	char port[16];
	int fd = -1, gai, e = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%d", d->port);
	if ((gai = getaddrinfo(d->hostname, port, &hints, &res)) != 0)
		return jp_error_set(err, gai == EAI_AGAIN ? JP_E_TEMPFAIL : JP_E_CONFIG,
		                    NAME ": cannot resolve %s: %s", d->hostname, gai_strerror(gai));
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		struct pollfd pfd;
		socklen_t elen = sizeof(e);

		if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		                 ai->ai_protocol)) < 0) {
			e = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
			e = errno;
		} else {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, d->opts.timeout_ms) != 1)
				e = ETIMEDOUT;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) != 0)
				e = errno;
		}
		if (e != 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		return jp_error_set(err, e == ECONNREFUSED || e == ETIMEDOUT || e == EHOSTUNREACH ||
		                                 e == ENETUNREACH ? JP_E_TEMPFAIL : JP_E_UNAVAILABLE,
		                    NAME ": cannot connect to %s port %d: %s", d->hostname, d->port,
		                    strerror(e));
	/* libssh2 works the socket in blocking mode, bounded by its session timeout. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	pthread_mutex_lock(&d->sock_lock);
	d->sock = fd;
	pthread_mutex_unlock(&d->sock_lock);
	return JP_OK;
}

static int
knownhost_keytype(int hostkey_type)
{
	switch (hostkey_type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA: return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
	case LIBSSH2_HOSTKEY_TYPE_DSS: return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
	case LIBSSH2_HOSTKEY_TYPE_ED25519: return LIBSSH2_KNOWNHOST_KEY_ED25519;
	default: return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
	}
}

static const char *
keytype_name(int hostkey_type)
{
	switch (hostkey_type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA: return "rsa";
	case LIBSSH2_HOSTKEY_TYPE_DSS: return "dsa";
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return "ecdsa";
	case LIBSSH2_HOSTKEY_TYPE_ED25519: return "ed25519";
	default: return "unknown";
	}
}

/* "SHA256:base64" as ssh-keygen -l prints it. */
static void
fingerprint(LIBSSH2_SESSION *s, char *out, size_t len)
{
	const unsigned char *h = (const unsigned char *)libssh2_hostkey_hash(s, LIBSSH2_HOSTKEY_HASH_SHA256);
	unsigned char b64[64];
	int n;

	if (h == NULL) {
		snprintf(out, len, "(no fingerprint)");
		return;
	}
	n = EVP_EncodeBlock(b64, h, 32);
	while (n > 0 && b64[n - 1] == '=')
		n--;
	snprintf(out, len, "SHA256:%.*s", n, b64);
}

/* Reads known_hosts line by line: a line libssh2 cannot parse (a certificate authority, a key
 * type it does not know) is passed over instead of ending the read. */
static void
read_known_hosts(LIBSSH2_KNOWNHOSTS *kh, const char *file)
{
	char line[8192];
	FILE *fp = fopen(file, "r");

	if (fp == NULL)
		return;
	while (fgets(line, sizeof(line), fp) != NULL) {
		size_t n = strlen(line);
		if (n == 0 || line[0] == '#' || line[0] == '\n')
			continue;
		libssh2_knownhost_readline(kh, line, n, LIBSSH2_KNOWNHOST_FILE_OPENSSH);
	}
	fclose(fp);
}

/* Appends the host's key to known_hosts (accept-new), creating ~/.ssh 0700 and the file 0600. */
static int
add_known_host(struct sftp_dest *d, LIBSSH2_KNOWNHOSTS *kh, const char *key, size_t keylen,
               int kt, struct jp_error *err)
{
	struct libssh2_knownhost *node = NULL;
	char name[300], line[8192];
	size_t outlen = 0;
	char *dir, *slash;
	int fd;

	if (d->port == 22)
		snprintf(name, sizeof(name), "%s", d->hostname);
	else
		snprintf(name, sizeof(name), "[%s]:%d", d->hostname, d->port);
	if (libssh2_knownhost_addc(kh, name, NULL, key, keylen, NULL, 0,
	                           LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | kt,
	                           &node) != 0 ||
	    libssh2_knownhost_writeline(kh, node, line, sizeof(line), &outlen,
	                                LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0)
		return jp_error_set(err, JP_E_SOFTWARE, NAME ": cannot format the host key of %s", name);
	if ((dir = strdup(d->known_hosts)) == NULL)
		return oom(err);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		mkdir(dir, 0700);
	}
	free(dir);
	fd = open(d->known_hosts, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, line, outlen) != (ssize_t)outlen) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return jp_error_set(err, JP_E_NOPERM, NAME ": cannot add the host key to %s: %s",
		                    d->known_hosts, strerror(e));
	}
	close(fd);
	jp_log_warn("sftp: added the %s host key of %s to %s", "new", name, d->known_hosts);
	return JP_OK;
}

/* The host key must be known and unchanged; there is no accept-anything mode. */
static int
check_host_key(struct sftp_dest *d, struct jp_error *err)
{
	LIBSSH2_KNOWNHOSTS *kh;
	struct libssh2_knownhost *found = NULL;
	const char *key;
	size_t keylen;
	char fp[80], scan[400];
	int type, kt, rc, r = JP_OK;

	if ((key = libssh2_session_hostkey(d->session, &keylen, &type)) == NULL)
		return jp_error_set(err, JP_E_TEMPFAIL, NAME ": %s sent no host key", d->hostname);
	if ((kh = libssh2_knownhost_init(d->session)) == NULL)
		return oom(err);
	read_known_hosts(kh, d->known_hosts);
	kt = knownhost_keytype(type);
	rc = libssh2_knownhost_checkp(kh, d->hostname, d->port, key, keylen,
	                              LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | kt,
	                              &found);
	fingerprint(d->session, fp, sizeof(fp));
	snprintf(scan, sizeof(scan), "ssh-keyscan %s-t %s %s >> %s", "", keytype_name(type),
	         d->hostname, d->known_hosts);
	if (d->port != 22)
		snprintf(scan, sizeof(scan), "ssh-keyscan -p %d -t %s %s >> %s", d->port,
		         keytype_name(type), d->hostname, d->known_hosts);
	switch (rc) {
	case LIBSSH2_KNOWNHOST_CHECK_MATCH:
		break;
	case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
		r = jp_error_set(err, JP_E_NOPERM,
		                 NAME ": HOST KEY CHANGED for %s port %d: it now presents %s %s, which "
		                 "differs from %s; this may be an attack or a reinstalled server: ask "
		                 "its administrator, then fix the entry in %s",
		                 d->hostname, d->port, keytype_name(type), fp, d->known_hosts,
		                 d->known_hosts);
		break;
	case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
		if (d->accept_new_host_key) {
			/* Not found for this key type; a key of another type known for the host means
			 * the host is not new: never add to it (OpenSSH's accept-new is for new hosts). */
			struct libssh2_knownhost *any = NULL;
			if (libssh2_knownhost_checkp(kh, d->hostname, d->port, key, keylen,
			                             LIBSSH2_KNOWNHOST_TYPE_PLAIN |
			                                 LIBSSH2_KNOWNHOST_KEYENC_RAW,
			                             &any) != LIBSSH2_KNOWNHOST_CHECK_NOTFOUND) {
				r = jp_error_set(err, JP_E_NOPERM,
				                 NAME ": %s port %d is known with a key of another type, not "
				                 "%s %s; --accept-new-host-key adds keys of new hosts only: "
				                 "check with the server's administrator, then add it: %s",
				                 d->hostname, d->port, keytype_name(type), fp, scan);
				break;
			}
			r = add_known_host(d, kh, key, keylen, kt, err);
			break;
		}
		r = jp_error_set(err, JP_E_NOPERM,
		                 NAME ": host key of %s port %d is not known (%s %s); check the "
		                 "fingerprint with the server's administrator, then add it: %s (or "
		                 "use --accept-new-host-key)",
		                 d->hostname, d->port, keytype_name(type), fp, scan);
		break;
	default:
		r = jp_error_set(err, JP_E_SOFTWARE, NAME ": cannot check the host key of %s",
		                 d->hostname);
	}
	libssh2_knownhost_free(kh);
	return r;
}

/* The passphrase for keys, from the file JOBPUB_SSH_PASSPHRASE_FILE names (never argv). */
static char *
passphrase(void)
{
	const char *f = getenv("JOBPUB_SSH_PASSPHRASE_FILE");
	char buf[1024], *s;
	struct stat sb;
	ssize_t n;
	int fd;

	/* read(2), not stdio: no buffer of ours keeps a copy.  A file others can read is no
	 * secret: refused (as ssh refuses such a key). */
	if (f == NULL || *f == '\0' || (fd = open(f, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return NULL;
	if (fstat(fd, &sb) != 0 || (sb.st_mode & 077) != 0) {
		close(fd);
		jp_log_warn("sftp: %s is readable by others: not used as a passphrase file", f);
		return NULL;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	s = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return s;
}

/* Tries one key file.  Records what was tried in `tried` for the error message. */
static int
try_key(struct sftp_dest *d, const char *file, const char *pass, FILE *tried, int *rsa)
{
	char pub[4096];
	FILE *fp;

	if (access(file, R_OK) != 0)
		return -1;
	fprintf(tried, "%s%s", ftell(tried) ? ", " : "", file);
	/* libssh2 1.10 signs RSA with SHA-1 (ssh-rsa): worth saying when an RSA key is refused. */
	snprintf(pub, sizeof(pub), "%s.pub", file);
	if ((fp = fopen(pub, "r")) != NULL) {
		if (fgets(pub, sizeof(pub), fp) != NULL && strncmp(pub, "ssh-rsa ", 8) == 0)
			*rsa = 1;
		fclose(fp);
	} else if (strstr(file, "id_rsa") != NULL) {
		*rsa = 1;
	}
	return libssh2_userauth_publickey_fromfile_ex(d->session, d->user, (unsigned)strlen(d->user),
	                                              NULL, file, pass);
}

/* Did the last libssh2 call fail on the transport (socket, timeout, a wait cut by a signal)
 * rather than by the server's answer? */
static int
transport_failed(struct sftp_dest *d)
{
	switch (libssh2_session_last_errno(d->session)) {
	case LIBSSH2_ERROR_SOCKET_NONE:
	case LIBSSH2_ERROR_SOCKET_SEND:
	case LIBSSH2_ERROR_SOCKET_RECV:
	case LIBSSH2_ERROR_SOCKET_TIMEOUT:
	case LIBSSH2_ERROR_SOCKET_DISCONNECT:
	case LIBSSH2_ERROR_TIMEOUT:
	case LIBSSH2_ERROR_EAGAIN:
		return 1;
	default:
		return 0;
	}
}

/*
 * Does an agent listen on path?  Asked before libssh2 is: when its connect fails, libssh2 1.10
 * closes the descriptor, then closes it again on disconnect and free (the second close may hit
 * a descriptor another lane opened meanwhile), and leaves "failed closing the agent socket" on
 * the session, which read as the SSH connection failing: a stale SSH_AUTH_SOCK made every
 * login fail with 75 without trying the default key files.
 */
static int
agent_reachable(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	int fd, ok;

	if (len == 0 || len >= sizeof(a.sun_path) ||
	    (fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return 0;
	memcpy(a.sun_path, path, len + 1);
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static int
try_agent(struct sftp_dest *d, FILE *tried, int *rsa)
{
	struct libssh2_agent_publickey *id = NULL, *prev = NULL;
	const char *sock = getenv("SSH_AUTH_SOCK");
	LIBSSH2_AGENT *agent;
	int rc = -1, n = 0;

	if (sock == NULL || !agent_reachable(sock) ||
	    (agent = libssh2_agent_init(d->session)) == NULL)
		return -1;
	if (libssh2_agent_connect(agent) == 0 && libssh2_agent_list_identities(agent) == 0) {
		while (libssh2_agent_get_identity(agent, &id, prev) == 0) {
			n++;
			if (id->blob_len > 11 && memcmp(id->blob + 4, "ssh-rsa", 7) == 0)
				*rsa = 1;
			if ((rc = libssh2_agent_userauth(agent, d->user, id)) == 0)
				break;
			prev = id;
		}
		fprintf(tried, "%sthe agent (%d key%s)", ftell(tried) ? ", " : "", n, n == 1 ? "" : "s");
	}
	libssh2_agent_disconnect(agent);
	libssh2_agent_free(agent);
	return rc;
}

/* OpenSSH's order: the named key, the agent, then the default key files. */
static int
authenticate(struct sftp_dest *d, struct jp_error *err)
{
	static const char *const defaults[] = {"id_ed25519", "id_ecdsa", "id_rsa"};
	char *pass = passphrase(), *tried = NULL, path[4096];
	size_t tlen = 0;
	FILE *tf = open_memstream(&tried, &tlen);
	int ok = 0, rsa = 0, r;
	size_t i;

	if (tf == NULL) {
		free(pass);
		return oom(err);
	}
	if (d->identity != NULL) {
		if (access(d->identity, R_OK) != 0) {
			fclose(tf);
			free(tried);
			free(pass);
			return jp_error_set(err, JP_E_CONFIG, NAME ": identity file %s: %s", d->identity,
			                    strerror(errno));
		}
		ok = try_key(d, d->identity, pass, tf, &rsa) == 0;
	}
	if (!ok && !transport_failed(d))
		ok = try_agent(d, tf, &rsa) == 0;
	for (i = 0; !ok && !transport_failed(d) && d->identity == NULL &&
	            i < sizeof(defaults) / sizeof(defaults[0]); i++) {
		snprintf(path, sizeof(path), "%s/.ssh/%s", home_dir(), defaults[i]);
		ok = try_key(d, path, pass, tf, &rsa) == 0;
	}
	fclose(tf);
	if (pass != NULL) {
		explicit_bzero(pass, strlen(pass));
		free(pass);
	}
	if (ok)
		r = JP_OK;
	else if (transport_failed(d))
		/* The connection failed (or a signal cut the wait) during the login: not a refusal,
		 * whatever the keys (it was reported as one, exit 77, and never retried). */
		r = fail(d, "log in as", d->user, err);
	else
		r = jp_error_set(err, JP_E_NOPERM,
		                 NAME ": %s@%s refused the login (tried: %s)%s%s", d->user, d->hostname,
		                 tried && *tried ? tried : "no key: give --identity, start an agent or "
		                                           "create ~/.ssh/id_ed25519",
		                 rsa ? "; an RSA key was among them, and this libssh2 signs RSA logins "
		                       "with SHA-1, which OpenSSH 8.8+ refuses: use an ed25519 key"
		                     : "",
		                 getenv("JOBPUB_SSH_PASSPHRASE_FILE") == NULL
		                     ? "; a key with a passphrase needs JOBPUB_SSH_PASSPHRASE_FILE" : "");
	free(tried);
	return r;
}

static void
disconnect(struct sftp_dest *d)
{
	int sock;

	if (d->sftp != NULL)
		libssh2_sftp_shutdown(d->sftp);
	if (d->session != NULL) {
		if (!d->broken)
			libssh2_session_disconnect(d->session, "jobpub done");
		libssh2_session_free(d->session);
	}
	/* -1 goes in before the close: a cancel that comes later finds nothing to shut down, one
	 * that holds the lock finishes on the still-open socket first.  A lock, not only an atomic
	 * exchange: between the canceller's load and its shutdown() the descriptor could be
	 * closed and handed to another open. */
	pthread_mutex_lock(&d->sock_lock);
	sock = d->sock;
	d->sock = -1;
	pthread_mutex_unlock(&d->sock_lock);
	if (sock >= 0)
		close(sock);
	d->sftp = NULL;
	d->session = NULL;
}

/*
 * The algorithms offered, most wanted first; only those this libssh2 has are passed on
 * (jp_ssh_methods: 1.10 corrupts memory when given one it lacks).  Host keys: OpenSSH's order,
 * so the known_hosts entry ssh(1) recorded is the one checked.  Ciphers and MACs: the fastest
 * first, as measured with `openssl speed -evp` on 32 KiB blocks (AES-NI, SHA-NI):
 * aes128-gcm 4.6 GB/s, chacha20-poly1305 3.6 GB/s, aes128-ctr 9.3 GB/s but with
 * hmac-sha2-256 (1.7 GB/s) 1.5 GB/s together; hmac-sha2-512 0.8 GB/s.
 */
static const struct {
	int type;
	const char *prefs;
} methods[] = {
	{LIBSSH2_METHOD_HOSTKEY, "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,"
	                         "ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa"},
#define CIPHERS "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com," \
                "aes128-ctr,aes192-ctr,aes256-ctr"
#define MACS "hmac-sha2-256-etm@openssh.com,hmac-sha2-256,hmac-sha2-512-etm@openssh.com," \
             "hmac-sha2-512,hmac-sha1-etm@openssh.com,hmac-sha1"
	{LIBSSH2_METHOD_CRYPT_CS, CIPHERS},
	{LIBSSH2_METHOD_CRYPT_SC, CIPHERS},
	{LIBSSH2_METHOD_MAC_CS, MACS},
	{LIBSSH2_METHOD_MAC_SC, MACS},
#undef CIPHERS
#undef MACS
};

static int
set_methods(struct sftp_dest *d, struct jp_error *err)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		const char **algs = NULL;
		int n = libssh2_session_supported_algs(d->session, methods[i].type, &algs);
		char *list;

		if (n <= 0)
			continue; /* libssh2 cannot say: its own defaults */
		list = jp_ssh_methods(methods[i].prefs, algs, n);
		libssh2_free(d->session, (void *)algs);
		if (list == NULL)
			return oom(err);
		/* None of ours, or refused: libssh2's defaults, all of which it has. */
		if (*list != '\0' && libssh2_session_method_pref(d->session, methods[i].type, list) != 0)
			jp_log_verbose(NAME ": libssh2 refused the algorithm list %s: its defaults apply",
			               list);
		free(list);
	}
	return JP_OK;
}

static int
connect_session(struct sftp_dest *d, struct jp_error *err)
{
	int r, st;

	if ((r = tcp_connect(d, err)) != JP_OK)
		return r;
	if ((d->session = libssh2_session_init()) == NULL)
		return oom(err);
	libssh2_session_set_blocking(d->session, 1);
	libssh2_session_set_timeout(d->session, d->opts.timeout_ms);
	if ((r = set_methods(d, err)) != JP_OK)
		return r;
	if (libssh2_session_handshake(d->session, d->sock) != 0) {
		char *msg = NULL;
		/* No algorithm in common (a server with only a DSA host key, say) fails the same way
		 * every time: not worth retrying (it was 75). */
		int kex = libssh2_session_last_error(d->session, &msg, NULL, 0) ==
		          LIBSSH2_ERROR_KEX_FAILURE;

		d->broken = 1;
		return jp_error_set(err, kex ? JP_E_UNAVAILABLE : JP_E_TEMPFAIL,
		                    NAME ": SSH handshake with %s port %d failed: %s%s", d->hostname,
		                    d->port, msg ? msg : "?",
		                    kex ? " (no key exchange, host key, cipher or MAC algorithm in "
		                          "common; host keys accepted: ed25519, ecdsa, rsa)"
		                        : "");
	}
	if ((r = check_host_key(d, err)) != JP_OK || (r = authenticate(d, err)) != JP_OK)
		return r;
	if ((d->sftp = libssh2_sftp_init(d->session)) == NULL)
		return fail(d, "start SFTP on", "", err);
	/* Writes and reads wait at most the stall limit for progress; a connect got timeout. */
	st = d->opts.stall_ms < d->opts.timeout_ms ? d->opts.stall_ms : d->opts.timeout_ms;
	libssh2_session_set_timeout(d->session, st);
	libssh2_keepalive_config(d->session, 1, 15);
	d->broken = 0;
	return JP_OK;
}

/* Reconnects a broken session (after a transport failure), before new work. */
static int
ensure_connected(struct sftp_dest *d, struct jp_error *err)
{
	int dummy;

	/* An idle lane (waiting for the others) may have lost its connection unseen: the
	 * keep-alive finds out, and a broken session is replaced, as is one whose last connect
	 * failed half-way (a session without its SFTP channel). */
	if (d->session != NULL && d->sftp != NULL && !d->broken &&
	    libssh2_keepalive_send(d->session, &dummy) == 0)
		return JP_OK;
	d->broken = 1;
	disconnect(d);
	return connect_session(d, err);
}

/* ---- the destination ---- */

static void
sftp_close(struct jp_dest *jd)
{
	struct sftp_dest *d = (struct sftp_dest *)jd;

	disconnect(d);
	for (size_t i = 0; i < sizeof(d->dirs) / sizeof(d->dirs[0]); i++) {
		free(d->dirs[i]);
		free(d->missing[i]);
	}
	free(d->host);
	free(d->hostname);
	free(d->user);
	free(d->root);
	free(d->identity);
	free(d->known_hosts);
	pthread_mutex_destroy(&d->sock_lock);
	free(d);
}

static int
parse_url(struct sftp_dest *d, const char *url, struct jp_error *err)
{
	CURLU *h = curl_url();
	char *user = NULL, *host = NULL, *port = NULL, *path = NULL;
	CURLUcode uc;
	int r = JP_OK;

	if (h == NULL)
		return oom(err);
	uc = curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
	if (uc == CURLUE_OK)
		uc = curl_url_get(h, CURLUPART_HOST, &host, 0);
	if (uc == CURLUE_OK)
		uc = curl_url_get(h, CURLUPART_PATH, &path, CURLU_URLDECODE);
	if (uc != CURLUE_OK) {
		r = jp_error_set(err, JP_E_CONFIG, NAME ": destination '%s': %s", url,
		                 curl_url_strerror(uc));
		goto out;
	}
	curl_url_get(h, CURLUPART_USER, &user, CURLU_URLDECODE);
	curl_url_get(h, CURLUPART_PORT, &port, 0);
	{
		/* A password in a URL ends up in argv, logs and the catalogue: refused. */
		char *pw = NULL;
		if (curl_url_get(h, CURLUPART_PASSWORD, &pw, 0) == CURLUE_OK) {
			curl_free(pw);
			r = jp_error_set(err, JP_E_CONFIG,
			                 NAME ": destination: a password in the URL is refused; use a key");
			goto out;
		}
	}
	if (path[0] != '/' || strncmp(path, "/~", 2) == 0) {
		r = jp_error_set(err, JP_E_CONFIG,
		                 NAME ": destination '%s': give an absolute remote path (sftp://host/abs/path)",
		                 url);
		goto out;
	}
	d->host = strdup(host);
	d->user = user ? strdup(user) : NULL;
	d->port = port ? atoi(port) : 0;
	d->root = strdup(path);
	if (d->host == NULL || d->root == NULL || (user && d->user == NULL))
		r = oom(err);
out:
	curl_free(user);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(h);
	return r;
}

/* libssh2 waits in poll() for up to the stall limit, and a signal need not reach the thread
 * that waits: shutting the socket down ends the wait at once (the session is then broken). */
static void
sftp_cancel(struct jp_dest *jd)
{
	struct sftp_dest *d = (struct sftp_dest *)jd;

	pthread_mutex_lock(&d->sock_lock);
	if (d->sock >= 0)
		shutdown(d->sock, SHUT_RDWR);
	pthread_mutex_unlock(&d->sock_lock);
}

static int
sftp_check(const char *url, const struct jp_dest_opts *opts, struct jp_error *err)
{
	struct sftp_dest *d = calloc(1, sizeof(*d));
	int r;

	if (d == NULL)
		return oom(err);
	d->sock = -1;
	pthread_mutex_init(&d->sock_lock, NULL);
	r = parse_url(d, url, err);
	/* ~/.ssh/config and the key (named on the command line, in the manifest or in the config)
	 * are read at login: a file that is malformed or missing is a setting to fix, found now,
	 * before the attempt begins (issue 13 defect 4: the catalogue must not change).  Without
	 * opts only the URL is checked (jp_dest_check_url: `manifest check` may run elsewhere). */
	if (r == JP_OK && opts != NULL) {
		struct jp_sshconf conf;
		const char *key;

		if (jp_sshconf_read(NULL, d->host, &conf) != 0) {
			r = jp_error_set(err, errno == ENOMEM ? JP_E_SOFTWARE : JP_E_CONFIG, NAME ": %s",
			                 conf.error);
			goto out;
		}
		key = jp_options_get(opts->options, NAME ".identity");
		if (key == NULL)
			key = conf.identity;
		if (key != NULL && access(key, R_OK) != 0)
			r = jp_error_set(err, JP_E_CONFIG, NAME ": identity file %s: %s", key,
			                 strerror(errno));
		jp_sshconf_free(&conf);
	}
out:
	sftp_close(&d->base);
	return r;
}

static int
sftp_open(const char *url, const struct jp_dest_opts *opts, struct jp_dest **out,
          struct jp_error *err)
{
	struct sftp_dest *d;
	struct jp_sshconf conf;
	const char *opt;
	size_t len;
	int r, named;

	*out = NULL;
	pthread_once(&init_once, lib_init);
	if (init_rc != 0)
		return jp_error_set(err, JP_E_SOFTWARE, NAME ": libssh2 failed to start");
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return oom(err);
	d->sock = -1;
	pthread_mutex_init(&d->sock_lock, NULL);
	d->opts = *opts;
	d->opts.options = NULL; /* read here only: the caller's store need not outlive d */
	d->accept_new_host_key = jp_options_bool(opts->options, NAME ".accept-new-host-key", 0);
	if (d->opts.timeout_ms <= 0)
		d->opts.timeout_ms = 30000;
	if (d->opts.stall_ms <= 0)
		d->opts.stall_ms = 60000;
	if ((r = parse_url(d, url, err)) != JP_OK)
		goto fail;
	/* Where `sftp HOST` would go: the URL first, then ~/.ssh/config, then the defaults. */
	if (jp_sshconf_read(NULL, d->host, &conf) != 0) {
		r = jp_error_set(err, errno == ENOMEM ? JP_E_SOFTWARE : JP_E_CONFIG, NAME ": %s",
		                 conf.error);
		goto fail;
	}
	d->hostname = strdup(conf.hostname ? conf.hostname : d->host);
	if (d->user == NULL && conf.user != NULL)
		d->user = strdup(conf.user);
	if (d->user == NULL) {
		struct passwd *pw = getpwuid(getuid());
		d->user = strdup(pw ? pw->pw_name : "root");
	}
	if (d->port == 0)
		d->port = conf.port > 0 ? conf.port : 22;
	if ((opt = jp_options_get(opts->options, NAME ".identity")) != NULL)
		d->identity = strdup(opt);
	else if (conf.identity != NULL)
		d->identity = strdup(conf.identity);
	named = opt != NULL || conf.identity != NULL;
	if ((opt = jp_options_get(opts->options, NAME ".known-hosts")) != NULL)
		d->known_hosts = strdup(opt);
	else if (conf.known_hosts != NULL)
		d->known_hosts = strdup(conf.known_hosts);
	else
		d->known_hosts = jp_asprintf("%s/.ssh/known_hosts", home_dir());
	jp_sshconf_free(&conf);
	/* An identity lost to a failed strdup would log in with other keys, or be refused as if
	 * no key had been named (77, misleading). */
	if (d->hostname == NULL || d->user == NULL || d->known_hosts == NULL ||
	    (named && d->identity == NULL)) {
		r = oom(err);
		goto fail;
	}
	len = strlen(d->root);
	while (len > 1 && d->root[len - 1] == '/')
		d->root[--len] = '\0';
	if ((r = connect_session(d, err)) != JP_OK)
		goto fail;
	*out = &d->base;
	return JP_OK;
fail:
	sftp_close(&d->base);
	return r;
}

static char *
key_path(struct sftp_dest *d, const char *key)
{
	if (key[0] == '\0')
		return strdup(d->root);
	return jp_asprintf("%s/%s", strcmp(d->root, "/") ? d->root : "", key);
}

/* stat (lstat with `nofollow`) that tells "absent" from a failure: 1 exists, 0 absent, -1
 * error (on err). */
static int
remote_stat2(struct sftp_dest *d, const char *path, LIBSSH2_SFTP_ATTRIBUTES *a, int nofollow,
             struct jp_error *err)
{
	if (libssh2_sftp_stat_ex(d->sftp, path, (unsigned)strlen(path),
	                         nofollow ? LIBSSH2_SFTP_LSTAT : LIBSSH2_SFTP_STAT, a) == 0)
		return 1;
	if (libssh2_session_last_errno(d->session) == LIBSSH2_ERROR_SFTP_PROTOCOL) {
		unsigned long fx = libssh2_sftp_last_error(d->sftp);
		if (fx == LIBSSH2_FX_NO_SUCH_FILE || fx == LIBSSH2_FX_NO_SUCH_PATH ||
		    fx == LIBSSH2_FX_NOT_A_DIRECTORY)
			return 0;
	}
	fail(d, "stat", path, err);
	return -1;
}

static int
remote_stat(struct sftp_dest *d, const char *path, LIBSSH2_SFTP_ATTRIBUTES *a,
            struct jp_error *err)
{
	return remote_stat2(d, path, a, 0, err);
}

static int
is_dir(const LIBSSH2_SFTP_ATTRIBUTES *a)
{
	return (a->flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && LIBSSH2_SFTP_S_ISDIR(a->permissions);
}

static int mkdirs_walk(struct sftp_dest *d, char *path, struct jp_error *err);

/* No component of path below the destination's root may be a symlink on the server (lstat
 * each): a link planted in a shared directory must not carry uploads elsewhere.  The root
 * itself, chosen by whoever configured the destination, may be one. */
static int
no_links_below_root(struct sftp_dest *d, const char *path, struct jp_error *err)
{
	size_t rl = strcmp(d->root, "/") == 0 ? 0 : strlen(d->root), n = strlen(path), i;
	char *buf;
	int r = JP_OK;

	if (strncmp(path, d->root, rl) != 0 || (path[rl] != '/' && path[rl] != '\0'))
		return JP_OK;
	if ((buf = strdup(path)) == NULL)
		return oom(err);
	for (i = rl + 1; i <= n && r == JP_OK; i++) {
		LIBSSH2_SFTP_ATTRIBUTES a;
		char c = buf[i];

		if (c != '/' && c != '\0')
			continue;
		buf[i] = '\0';
		if (libssh2_sftp_stat_ex(d->sftp, buf, (unsigned)strlen(buf), LIBSSH2_SFTP_LSTAT, &a) == 0 &&
		    (a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && LIBSSH2_SFTP_S_ISLNK(a.permissions))
			r = jp_error_set(err, JP_E_DATA,
			                 NAME ": %s on %s is a symbolic link; jobpub does not follow links "
			                 "inside a destination",
			                 buf, d->hostname);
		buf[i] = c;
	}
	free(buf);
	return r;
}

static int
dir_known(struct sftp_dest *d, const char *path)
{
	size_t i;

	for (i = 0; i < sizeof(d->dirs) / sizeof(d->dirs[0]); i++)
		if (d->dirs[i] != NULL && strcmp(d->dirs[i], path) == 0)
			return 1;
	return 0;
}

static void
dir_remember(struct sftp_dest *d, const char *path)
{
	unsigned k = d->next_dir++ % (unsigned)(sizeof(d->dirs) / sizeof(d->dirs[0]));

	free(d->dirs[k]);
	d->dirs[k] = strdup(path);
}

/* mkdir -p, tolerating another publisher creating the same directory at the same moment.  A
 * directory seen once is not asked about again (one round trip per file saved). */
static int
mkdirs(struct sftp_dest *d, char *path, struct jp_error *err)
{
	int r;

	if (dir_known(d, path))
		return JP_OK;
	for (size_t i = 0; i < sizeof(d->missing) / sizeof(d->missing[0]); i++) {
		free(d->missing[i]); /* they may exist now */
		d->missing[i] = NULL;
	}
	if ((r = mkdirs_walk(d, path, err)) == JP_OK && (r = no_links_below_root(d, path, err)) == JP_OK)
		dir_remember(d, path);
	return r;
}

static int
mkdirs_walk(struct sftp_dest *d, char *path, struct jp_error *err)
{
	LIBSSH2_SFTP_ATTRIBUTES a;
	char *p;
	int s;

	if ((s = remote_stat(d, path, &a, err)) < 0)
		return JP_FAILED;
	if (s == 1)
		return is_dir(&a) ? JP_OK
		                  : jp_error_set(err, JP_E_UNAVAILABLE, NAME ": %s on %s is not a directory",
		                                 path, d->hostname);
	for (p = path + 1;; p++) {
		char c;

		if (*p != '/' && *p != '\0')
			continue;
		c = *p;
		*p = '\0';
		if (libssh2_sftp_mkdir_ex(d->sftp, path, (unsigned)strlen(path), 0777) != 0) {
			unsigned long fx = libssh2_sftp_last_error(d->sftp);
			int lerr = libssh2_session_last_errno(d->session);
			/* Exists already (ours or a racing publisher's), or a real failure: stat says. */
			s = remote_stat(d, path, &a, err);
			if (s == 0) {
				if (lerr != LIBSSH2_ERROR_SFTP_PROTOCOL)
					fail(d, "mkdir", path, err);
				else
					jp_error_set(err, fx == LIBSSH2_FX_PERMISSION_DENIED ? JP_E_NOPERM : JP_E_UNAVAILABLE,
					             NAME ": mkdir %s on %s: %s", path, d->hostname, fx_name(fx));
			}
			if (s <= 0) {
				*p = c;
				return JP_FAILED;
			}
			if (!is_dir(&a)) {
				int r = jp_error_set(err, JP_E_UNAVAILABLE,
				                     NAME ": cannot create directory %s on %s: a file is in the way",
				                     path, d->hostname);
				*p = c;
				return r;
			}
		}
		*p = c;
		if (c == '\0')
			break;
	}
	return JP_OK;
}

static void
upload_free(struct jp_upload *u)
{
	struct sftp_upload *su = (struct sftp_upload *)u;

	if (su->h != NULL)
		libssh2_sftp_close_handle(su->h);
	free(su->final);
	free(su->tmp);
	free(su);
}

static int
sftp_stage(struct jp_dest *jd, const char *key, const char *token, uint64_t size_hint,
           struct jp_upload **out, struct jp_error *err)
{
	struct sftp_dest *d = (struct sftp_dest *)jd;
	struct sftp_upload *su;
	char *dir = NULL, *base;
	int r;

	(void)size_hint; /* files are written as they come */
	*out = NULL;
	if ((r = ensure_connected(d, err)) != JP_OK)
		return r;
	if ((su = calloc(1, sizeof(*su))) == NULL)
		return oom(err);
	if ((su->final = key_path(d, key)) == NULL) {
		r = oom(err);
		goto fail;
	}
	base = strrchr(su->final, '/') + 1;
	if ((dir = strndup(su->final, (size_t)(base - 1 - su->final))) == NULL) {
		r = oom(err);
		goto fail;
	}
	if (dir[0] != '\0' && (r = mkdirs(d, dir, err)) != JP_OK)
		goto fail;
	su->tmp = jp_asprintf("%s/%s%s.%.*s", dir, JP_TMP_PREFIX, token,
	                      (int)(255 - strlen(JP_TMP_PREFIX) - strlen(token) - 1), base);
	if (su->tmp == NULL) {
		r = oom(err);
		goto fail;
	}
	su->h = libssh2_sftp_open_ex(d->sftp, su->tmp, (unsigned)strlen(su->tmp),
	                             LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL, 0600,
	                             LIBSSH2_SFTP_OPENFILE);
	/* A retry reuses the token: what the broken try left under this name is ours. */
	if (su->h == NULL && libssh2_session_last_errno(d->session) == LIBSSH2_ERROR_SFTP_PROTOCOL &&
	    (libssh2_sftp_last_error(d->sftp) == LIBSSH2_FX_FAILURE ||
	     libssh2_sftp_last_error(d->sftp) == LIBSSH2_FX_FILE_ALREADY_EXISTS) &&
	    libssh2_sftp_unlink_ex(d->sftp, su->tmp, (unsigned)strlen(su->tmp)) == 0)
		su->h = libssh2_sftp_open_ex(d->sftp, su->tmp, (unsigned)strlen(su->tmp),
		                             LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL, 0600,
		                             LIBSSH2_SFTP_OPENFILE);
	if (su->h == NULL) {
		r = fail(d, "create", su->tmp, err);
		goto fail;
	}
	su->base.staged = 1;
	su->window_start = jp_now_ms();
	free(dir);
	*out = &su->base;
	return JP_OK;
fail:
	free(dir);
	upload_free(&su->base);
	return r;
}

static int
sftp_write(struct jp_upload *u, const void *buf, size_t len, struct jp_error *err)
{
	struct sftp_upload *su = (struct sftp_upload *)u;
	struct sftp_dest *d = (struct sftp_dest *)u->dest;
	const char *p = buf;

	while (len > 0) {
		/* Handed a large buffer, libssh2 sends many write requests before it waits. */
		ssize_t n = libssh2_sftp_write(su->h, p, len);
		int64_t now;

		if (n < 0)
			return fail(d, "write", su->tmp, err);
		p += n;
		len -= (size_t)n;
		/* The stall rule: less than 1 KiB/s over a window of --stall seconds fails, so a
		 * trickling connection cannot hold an epilogue for hours. */
		su->window_bytes += (uint64_t)n;
		now = jp_now_ms();
		if (now - su->window_start >= d->opts.stall_ms) {
			if (su->window_bytes < (uint64_t)(now - su->window_start)) {
				d->broken = 1;
				shutdown(d->sock, SHUT_RDWR);
				return jp_error_set(err, JP_E_TEMPFAIL,
				                    NAME ": transfer of %s to %s stalled (%llu bytes in %.0f s)",
				                    su->tmp, d->hostname, (unsigned long long)su->window_bytes,
				                    (double)(now - su->window_start) / 1000.0);
			}
			su->window_start = now;
			su->window_bytes = 0;
		}
	}
	return JP_OK;
}

static int
sftp_finish(struct jp_upload *u, uint64_t size, const unsigned char sha256[32],
            struct jp_error *err)
{
	struct sftp_upload *su = (struct sftp_upload *)u;
	struct sftp_dest *d = (struct sftp_dest *)u->dest;
	LIBSSH2_SFTP_ATTRIBUTES a;

	/* fsync@openssh.com where the server offers it; elsewhere the close must do. */
	if (libssh2_sftp_fsync(su->h) != 0 &&
	    !(libssh2_session_last_errno(d->session) == LIBSSH2_ERROR_SFTP_PROTOCOL &&
	      libssh2_sftp_last_error(d->sftp) == LIBSSH2_FX_OP_UNSUPPORTED))
		return fail(d, "fsync", su->tmp, err);
	if (libssh2_sftp_fstat_ex(su->h, &a, 0) != 0)
		return fail(d, "stat", su->tmp, err);
	if (libssh2_sftp_close_handle(su->h) != 0) {
		su->h = NULL;
		return fail(d, "close", su->tmp, err);
	}
	su->h = NULL;
	if (!(a.flags & LIBSSH2_SFTP_ATTR_SIZE) || a.filesize != size)
		return jp_error_set(err, JP_E_TEMPFAIL, NAME ": %s on %s holds %llu bytes, expected %llu",
		                    su->tmp, d->hostname, (unsigned long long)a.filesize,
		                    (unsigned long long)size);
	return JP_OK;
}

static int
sftp_commit(struct jp_upload *u, int overwrite, int *exists, int *replaced,
            struct jp_error *err)
{
	struct sftp_upload *su = (struct sftp_upload *)u;
	struct sftp_dest *d = (struct sftp_dest *)u->dest;
	LIBSSH2_SFTP_ATTRIBUTES a;
	char *old = NULL;
	int s, r = JP_OK;

	/* The staged file lives on the server, not in the session: a lane that lost its
	 * connection while waiting can still commit over a new one. */
	if ((r = ensure_connected(d, err)) != JP_OK)
		return r;
	if (overwrite) {
		if ((s = remote_stat(d, su->final, &a, err)) < 0)
			return JP_FAILED;
		if (s == 1 && is_dir(&a))
			return jp_error_set(err, JP_E_UNAVAILABLE, NAME ": %s on %s is a directory",
			                    su->final, d->hostname);
		if (s == 1) {
			/* SFTP v3 cannot replace in one step: move the old file aside under a temporary
			 * name, move ours in, delete the old.  Between the two renames the final name is
			 * briefly absent, never partial. */
			const char *b = strrchr(su->final, '/') + 1;
			old = jp_asprintf("%.*s%s%s", (int)(b - su->final), su->final, JP_TMP_DISPLACED,
			                  strrchr(su->tmp, '/') + 1 + strlen(JP_TMP_PREFIX));
			if (old == NULL)
				return oom(err);
			if (libssh2_sftp_rename_ex(d->sftp, su->final, (unsigned)strlen(su->final), old,
			                           (unsigned)strlen(old), 0) != 0) {
				r = fail(d, "move aside", su->final, err);
				free(old);
				return r;
			}
			*replaced = 1;
		}
	}
	if (libssh2_sftp_rename_ex(d->sftp, su->tmp, (unsigned)strlen(su->tmp), su->final,
	                           (unsigned)strlen(su->final), 0) != 0) {
		struct jp_error e;

		jp_error_clear(&e);
		if (old != NULL) {
			r = fail(d, "rename to", su->final, err);
			libssh2_sftp_rename_ex(d->sftp, old, (unsigned)strlen(old), su->final,
			                       (unsigned)strlen(su->final), 0);
			*replaced = 0;
			free(old);
			return r;
		}
		/* SFTP v3 refuses an existing target: tell that apart from a real failure. */
		if ((s = remote_stat(d, su->final, &a, &e)) == 1) {
			*exists = 1;
			return JP_OK;
		}
		return fail(d, "rename to", su->final, err);
	}
	if (old != NULL) {
		libssh2_sftp_unlink_ex(d->sftp, old, (unsigned)strlen(old));
		free(old);
	}
	u->staged = 0;
	u->committed = 1;
	return JP_OK;
}

static int
sftp_abort(struct jp_upload *u, struct jp_error *err)
{
	struct sftp_upload *su = (struct sftp_upload *)u;
	struct sftp_dest *d = (struct sftp_dest *)u->dest;

	u->staged = 0;
	if (d->broken || d->session == NULL)
		return jp_error_set(err, JP_E_TEMPFAIL,
		                    NAME ": %s on %s is left behind: the connection is gone", su->tmp,
		                    d->hostname);
	if (su->h != NULL) {
		libssh2_sftp_close_handle(su->h);
		su->h = NULL;
	}
	if (libssh2_sftp_unlink_ex(d->sftp, su->tmp, (unsigned)strlen(su->tmp)) != 0 &&
	    !(libssh2_session_last_errno(d->session) == LIBSSH2_ERROR_SFTP_PROTOCOL &&
	      libssh2_sftp_last_error(d->sftp) == LIBSSH2_FX_NO_SUCH_FILE))
		return fail(d, "remove", su->tmp, err);
	return JP_OK;
}

static int
sftp_stat(struct jp_dest *jd, const char *key, struct jp_stat *st, struct jp_error *err)
{
	struct sftp_dest *d = (struct sftp_dest *)jd;
	LIBSSH2_SFTP_ATTRIBUTES a;
	char *path;
	int s, r;

	if ((r = ensure_connected(d, err)) != JP_OK)
		return r;
	if ((path = key_path(d, key)) == NULL)
		return oom(err);
	/* In a directory that does not exist, nothing does: one round trip per directory instead
	 * of one per file, for a first publish into new directories.  (A file someone else creates
	 * meanwhile is still caught: the commit never replaces.) */
	{
		char *slash = strrchr(path, '/');
		size_t i;

		if (slash != NULL && slash != path) {
			*slash = '\0';
			for (i = 0; i < sizeof(d->missing) / sizeof(d->missing[0]); i++)
				if (d->missing[i] != NULL && strcmp(d->missing[i], path) == 0) {
					free(path);
					st->exists = 0;
					return JP_OK;
				}
			*slash = '/';
		}
		/* A link under a final name is reported as the link, never followed (a conflict). */
		s = remote_stat2(d, path, &a, 1, err);
		if (s == 0 && slash != NULL && slash != path) {
			LIBSSH2_SFTP_ATTRIBUTES pa;
			struct jp_error e;

			*slash = '\0';
			jp_error_clear(&e);
			if (!dir_known(d, path) && remote_stat(d, path, &pa, &e) == 0) {
				unsigned k = d->next_missing++ % (unsigned)(sizeof(d->missing) / sizeof(d->missing[0]));
				free(d->missing[k]);
				d->missing[k] = strdup(path);
			}
		}
	}
	free(path);
	if (s < 0)
		return JP_FAILED;
	st->exists = s;
	if (s) {
		st->is_dir = is_dir(&a);
		st->size = a.filesize;
		st->mtime = (time_t)a.mtime;
	}
	return JP_OK;
}

static int
sftp_remove(struct jp_dest *jd, const char *key, struct jp_error *err)
{
	struct sftp_dest *d = (struct sftp_dest *)jd;
	char *path;
	int r = JP_OK;

	if ((r = ensure_connected(d, err)) != JP_OK)
		return r;
	if ((path = key_path(d, key)) == NULL)
		return oom(err);
	if (libssh2_sftp_unlink_ex(d->sftp, path, (unsigned)strlen(path)) != 0 &&
	    !(libssh2_session_last_errno(d->session) == LIBSSH2_ERROR_SFTP_PROTOCOL &&
	      libssh2_sftp_last_error(d->sftp) == LIBSSH2_FX_NO_SUCH_FILE))
		r = fail(d, "remove", path, err);
	free(path);
	return r;
}

static int
sftp_read(struct jp_dest *jd, const char *key, jp_read_fn fn, void *arg, struct jp_error *err)
{
	struct sftp_dest *d = (struct sftp_dest *)jd;
	LIBSSH2_SFTP_HANDLE *h;
	char *path, *buf = NULL;
	int r = JP_OK;

	if ((r = ensure_connected(d, err)) != JP_OK)
		return r;
	if ((path = key_path(d, key)) == NULL || (buf = malloc(READ_CHUNK)) == NULL) {
		free(path);
		return oom(err);
	}
	h = libssh2_sftp_open_ex(d->sftp, path, (unsigned)strlen(path), LIBSSH2_FXF_READ, 0,
	                         LIBSSH2_SFTP_OPENFILE);
	if (h == NULL) {
		r = fail(d, "open", path, err);
		goto out;
	}
	{
	int64_t wstart = jp_now_ms();
	uint64_t wbytes = 0;

	for (;;) {
		ssize_t n = libssh2_sftp_read(h, buf, READ_CHUNK);
		int64_t now;

		if (n < 0) {
			r = fail(d, "read", path, err);
			break;
		}
		if (n == 0)
			break;
		/* The same stall rule as for writes: a trickle must not hold a publish forever. */
		wbytes += (uint64_t)n;
		now = jp_now_ms();
		if (now - wstart >= d->opts.stall_ms) {
			if (wbytes < (uint64_t)(now - wstart)) {
				d->broken = 1;
				shutdown(d->sock, SHUT_RDWR);
				r = jp_error_set(err, JP_E_TEMPFAIL, NAME ": reading %s from %s stalled", path,
				                 d->hostname);
				break;
			}
			wstart = now;
			wbytes = 0;
		}
		if (fn(arg, buf, (size_t)n) != 0) {
			r = jp_error_set(err, JP_E_TEMPFAIL, NAME ": read of %s stopped", path);
			break;
		}
	}
	}
	libssh2_sftp_close_handle(h);
out:
	free(buf);
	free(path);
	return r;
}

/* Depth-first listing of dir (a key prefix, "" for the root). */
static int
list_dir(struct sftp_dest *d, const char *rel, jp_list_fn fn, void *arg, struct jp_error *err)
{
	LIBSSH2_SFTP_HANDLE *h;
	LIBSSH2_SFTP_ATTRIBUTES a;
	char name[1024], *path = key_path(d, rel);
	int r = JP_OK, n;

	if (path == NULL)
		return oom(err);
	if ((h = libssh2_sftp_open_ex(d->sftp, path, (unsigned)strlen(path), 0, 0,
	                              LIBSSH2_SFTP_OPENDIR)) == NULL) {
		/* A destination nothing was ever published to (its publisher died before it made the
		 * directory) holds nothing: gc must not fail on it. */
		if (rel[0] == '\0' &&
		    libssh2_session_last_errno(d->session) == LIBSSH2_ERROR_SFTP_PROTOCOL &&
		    libssh2_sftp_last_error(d->sftp) == LIBSSH2_FX_NO_SUCH_FILE) {
			free(path);
			return JP_OK;
		}
		r = fail(d, "list", path, err);
		free(path);
		return r;
	}
	while (r == JP_OK && (n = libssh2_sftp_readdir(h, name, sizeof(name), &a)) > 0) {
		char *child;

		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		child = rel[0] ? jp_asprintf("%s/%s", rel, name) : strdup(name);
		if (child == NULL) {
			r = oom(err);
			break;
		}
		if (is_dir(&a)) {
			r = list_dir(d, child, fn, arg, err);
		} else if ((a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) &&
		           LIBSSH2_SFTP_S_ISREG(a.permissions)) {
			struct jp_stat st = {.exists = 1, .size = a.filesize, .mtime = (time_t)a.mtime};
			if (fn(arg, child, &st) != 0)
				r = JP_WARN; /* stop, quietly */
		}
		free(child);
	}
	libssh2_sftp_close_handle(h);
	free(path);
	return r == JP_WARN ? JP_OK : r;
}

static int
sftp_list(struct jp_dest *jd, const char *prefix, jp_list_fn fn, void *arg,
          struct jp_error *err)
{
	struct sftp_dest *d = (struct sftp_dest *)jd;
	int r;

	if ((r = ensure_connected(d, err)) != JP_OK)
		return r;
	return list_dir(d, prefix, fn, arg, err);
}

static const char *const sftp_schemes[] = {"sftp", NULL};

/* What `-o sftp.KEY=VALUE` and the manifest's sftp: section may set (options.h). */
static const struct jp_option_def sftp_options[] = {
	{.name = "identity", .type = JP_OPTION_PATH, .alias = "identity",
	 .help = "SSH private key (before the agent and ~/.ssh/id_*)"},
	{.name = "known-hosts", .type = JP_OPTION_PATH, .alias = "known-hosts",
	 .def = "~/.ssh/known_hosts, or the ssh config's", .help = "SSH known hosts"},
	/* Trusting a new host is for whoever runs the command, not for a file a job writes. */
	{.name = "accept-new-host-key", .type = JP_OPTION_BOOL, .alias = "accept-new-host-key",
	 .def = "false", .flags = JP_OPTION_CLI_ONLY,
	 .help = "add an unknown SSH host key (never a changed one)"},
	{.name = "passphrase", .type = JP_OPTION_SECRET_ENV, .env = "JOBPUB_SSH_PASSPHRASE_FILE",
	 .help = "the key's passphrase, read from the file (mode 0600) the variable names"},
	{.name = NULL},
};

const struct jp_backend jp_backend_sftp = {
	.name = NAME,
	.schemes = sftp_schemes,
	.open = sftp_open,
	.close = sftp_close,
	.stage = sftp_stage,
	.write = sftp_write,
	.finish = sftp_finish,
	.commit = sftp_commit,
	.abort = sftp_abort,
	.upload_free = upload_free,
	.stat = sftp_stat,
	.remove = sftp_remove,
	.digest = NULL, /* read back and hashed by dest.c */
	.read = sftp_read,
	.list = sftp_list,
	.uncommit = NULL, /* dest.c removes the name */
	.sync = NULL,   /* fsync@openssh.com per file in finish; SFTP has no directory fsync */
	.check = sftp_check,
	.cancel = sftp_cancel,
	.options = sftp_options,
};

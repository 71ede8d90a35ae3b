#!/usr/bin/env bash
# Real FTP servers for the FTP test suite (tests/ftp.rs), on loopback high
# ports, run as root on a Debian 12 machine:
#
#   bash .ci/ftp-servers.sh start   # install, start, write $STATE/env
#   source "$STATE/env"             # FERRY_TEST_* for cargo test
#   bash .ci/ftp-servers.sh stop    # kill exactly the PIDs started, clean up
#
# pure-ftpd and vsftpd conflict as Debian packages (installing one removes
# the other), so pure-ftpd is installed and vsftpd is only unpacked into
# $STATE. Both serve FTP and explicit FTPS with a certificate signed by a CA
# made here ($STATE/ca.pem, exported as FERRY_TEST_FTP_CA). The tests pass
# --tls12 to vsftpd: its TLS 1.3 session reuse fails on later data
# connections. Nothing already running (say a pure-ftpd on port 2121) is
# touched: ports are picked free, and stop kills only the PIDs in $STATE.
set -euo pipefail

STATE=${FERRY_FTP_STATE:-/tmp/ferry-ftp-servers}
# Where vsftpd is unpacked, kept across runs when set (scripts/test does).
CACHE=${FERRY_FTP_CACHE:-$STATE}
VSFTPD=$CACHE/vsftpd/usr/sbin/vsftpd
FTP_USER=${FERRY_FTP_USER:-ferrytest}
PAM_SERVICE=ferry-vsftpd-$FTP_USER
BLOCK=200
# vsftpd binds a new passive port for every transfer; see free_block.
VS_BLOCK=2000

log() { echo "ftp-servers: $*" >&2; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A free port in [low, high) not yet handed out by this script.
PICKED=" "
free_port() {
    local low=$1 high=$2 port tries=0
    while :; do
        port=$((low + RANDOM % (high - low)))
        if [[ $PICKED != *" $port "* ]] && ! port_in_use "$port"; then
            PICKED+="$port "
            echo "$port"
            return
        fi
        tries=$((tries + 1))
        [[ $tries -lt 200 ]] || { log "no free port in $low-$high"; exit 1; }
    done
}

# A free block of SIZE passive ports: prints LOW (LOW..LOW+SIZE-1 are unused).
# vsftpd answered "500 OOPS: vsf_sysutil_bind" after a few thousand data
# connections (issue 14): its 200 ports lay inside the kernel's ephemeral
# range (/proc/sys/net/ipv4/ip_local_port_range, 32768-60999 on Debian),
# where the client's own data connections took them. The blocks are now
# picked below that range, and vsftpd, which binds a fresh port for every
# transfer, gets a wide one.
free_block() {
    local low=$1 high=$2 size=$3 base p ok tries=0
    while :; do
        base=$((low + (RANDOM % ((high - low) / size)) * size))
        ok=1
        for ((p = base; p < base + size; p++)); do
            if [[ $PICKED == *" $p "* ]] || port_in_use "$p"; then ok=0; break; fi
        done
        if [[ $ok == 1 ]]; then
            for ((p = base; p < base + size; p++)); do PICKED+="$p "; done
            echo "$base"
            return
        fi
        tries=$((tries + 1))
        [[ $tries -lt 100 ]] || { log "no free passive port block in $low-$high"; exit 1; }
    done
}

wait_for_port() {
    local port=$1 name=$2 pid=$3
    for _ in $(seq 1 100); do
        port_in_use "$port" && return 0
        kill -0 "$pid" 2>/dev/null || { log "$name (pid $pid) exited at start"; return 1; }
        sleep 0.1
    done
    log "$name did not listen on 127.0.0.1:$port"
    return 1
}

install_packages() {
    export DEBIAN_FRONTEND=noninteractive
    local missing=()
    command -v pure-ftpd >/dev/null || missing+=(pure-ftpd)
    command -v lftp >/dev/null || missing+=(lftp)
    command -v openssl >/dev/null || missing+=(openssl)
    # vsftpd's own libraries (it links libwrap, libpam, libcap, libssl).
    dpkg -s libwrap0 >/dev/null 2>&1 || missing+=(libwrap0)
    dpkg -s libpam-modules >/dev/null 2>&1 || missing+=(libpam-modules)
    if [[ ${#missing[@]} -gt 0 ]]; then
        log "installing ${missing[*]}"
        apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if [[ ! -x $VSFTPD ]]; then
        log "unpacking vsftpd into $CACHE/vsftpd (not installed: it conflicts with pure-ftpd)"
        local unpack=$CACHE/vsftpd.$$
        rm -rf "$unpack"
        mkdir -p "$unpack/pkg"
        (cd "$unpack/pkg" && apt-get download -qq vsftpd 2>/dev/null) || {
            log "apt-get download vsftpd failed (run apt-get update first)"
            exit 1
        }
        dpkg-deb -x "$unpack"/pkg/vsftpd_*.deb "$unpack/root"
        rm -rf "$CACHE/vsftpd"
        mv "$unpack/root" "$CACHE/vsftpd"
        rm -rf "$unpack"
    fi
    if ldd "$VSFTPD" | grep -q "not found"; then
        log "vsftpd misses libraries:"
        ldd "$VSFTPD" | grep "not found" >&2
        exit 1
    fi
}

make_certificates() {
    local dir=$STATE/tls
    mkdir -p "$dir"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$dir/ca.key" -subj "/CN=ferry CI FTP CA" -days 7 -out "$dir/ca.pem" 2>/dev/null
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/server.key" 2>/dev/null
    openssl req -new -key "$dir/server.key" -subj "/CN=127.0.0.1" -out "$dir/server.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$dir/server.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
        -days 7 -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null
    cat "$dir/server.pem" "$dir/ca.pem" >"$dir/chain.pem"
    # pure-ftpd wants key and certificates in one file.
    cat "$dir/server.key" "$dir/chain.pem" >"$dir/pure-ftpd.pem"
    chmod 600 "$dir"/*.key "$dir/pure-ftpd.pem"
    cp "$dir/ca.pem" "$STATE/ca.pem"
}

make_user() {
    local home=$STATE/home
    if ! id "$FTP_USER" >/dev/null 2>&1; then
        useradd --home-dir "$home" --shell /bin/sh --no-create-home --user-group "$FTP_USER"
    fi
    PASSWORD=$(openssl rand -hex 16)
    echo "$FTP_USER:$PASSWORD" | chpasswd
    mkdir -p "$home/pure" "$home/vsftpd"
    chown -R "$FTP_USER:$FTP_USER" "$home"
    chmod 755 "$STATE" "$home"
}

start_pure_ftpd() {
    local port=$1 passive=$2
    /usr/sbin/pure-ftpd -S "127.0.0.1,$port" -l unix -E -A -H -p "$passive:$((passive + BLOCK - 1))" \
        -Y 1 -2 "$STATE/tls/pure-ftpd.pem" -c 200 -C 100 -u 100 \
        </dev/null >"$STATE/pure-ftpd.log" 2>&1 &
    echo $! >"$STATE/pure-ftpd.pid"
    wait_for_port "$port" pure-ftpd "$!"
}

start_vsftpd() {
    local port=$1 passive=$2
    mkdir -p "$STATE/vsftpd-empty"
    chmod 755 "$STATE/vsftpd-empty"
    printf '%s\n' "auth required pam_unix.so" "account required pam_unix.so" "session required pam_unix.so" \
        >"/etc/pam.d/$PAM_SERVICE"
    cat >"$STATE/vsftpd.conf" <<EOF
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$port
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
chroot_local_user=NO
pasv_enable=YES
pasv_address=127.0.0.1
pasv_min_port=$passive
pasv_max_port=$((passive + VS_BLOCK - 1))
port_enable=YES
connect_from_port_20=NO
pam_service_name=$PAM_SERVICE
secure_chroot_dir=$STATE/vsftpd-empty
seccomp_sandbox=NO
use_localtime=NO
xferlog_enable=NO
vsftpd_log_file=$STATE/vsftpd.log
max_clients=200
max_per_ip=100
ssl_enable=YES
allow_anon_ssl=NO
force_local_logins_ssl=NO
force_local_data_ssl=NO
ssl_tlsv1=NO
ssl_sslv2=NO
ssl_sslv3=NO
rsa_cert_file=$STATE/tls/chain.pem
rsa_private_key_file=$STATE/tls/server.key
EOF
    "$VSFTPD" "$STATE/vsftpd.conf" </dev/null >"$STATE/vsftpd.out" 2>&1 &
    echo $! >"$STATE/vsftpd.pid"
    wait_for_port "$port" vsftpd "$!"
}

start() {
    if [[ -f $STATE/env ]]; then
        log "already started ($STATE/env); run stop first"
        exit 1
    fi
    mkdir -p "$STATE"
    install_packages
    make_certificates
    make_user
    local pure_port vs_port pure_passive vs_passive
    pure_port=$(free_port 21000 29000)
    vs_port=$(free_port 21000 29000)
    pure_passive=$(free_block 10000 20000 "$BLOCK")
    vs_passive=$(free_block 10000 20000 "$VS_BLOCK")
    start_pure_ftpd "$pure_port" "$pure_passive"
    start_vsftpd "$vs_port" "$vs_passive"
    local home=$STATE/home
    cat >"$STATE/env" <<EOF
export FERRY_TEST_PUREFTPD=ftp://$FTP_USER@127.0.0.1:$pure_port/pure
export FERRY_TEST_PUREFTPD_DIR=$home/pure
export FERRY_TEST_VSFTPD=ftp://$FTP_USER@127.0.0.1:$vs_port$home/vsftpd
export FERRY_TEST_VSFTPD_DIR=$home/vsftpd
export FERRY_TEST_FTP_PASSWORD=$PASSWORD
export FERRY_TEST_FTP_CA=$STATE/ca.pem
EOF
    log "pure-ftpd on 127.0.0.1:$pure_port (pid $(cat "$STATE/pure-ftpd.pid")), vsftpd on 127.0.0.1:$vs_port (pid $(cat "$STATE/vsftpd.pid"))"
    echo "$STATE/env"
}

stop() {
    local pidfile pid
    for pidfile in "$STATE"/pure-ftpd.pid "$STATE"/vsftpd.pid; do
        [[ -f $pidfile ]] || continue
        pid=$(cat "$pidfile")
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$pidfile"
    done
    rm -f "/etc/pam.d/$PAM_SERVICE" "$STATE/env"
    if id "$FTP_USER" >/dev/null 2>&1 && [[ $(getent passwd "$FTP_USER" | cut -d: -f6) == "$STATE/home" ]]; then
        userdel "$FTP_USER" 2>/dev/null || true
    fi
    rm -rf "$STATE/home" "$STATE/tls" "$STATE/vsftpd-empty"
    log "stopped"
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    *)
        echo "usage: $0 start|stop   (state in \$FERRY_FTP_STATE, default /tmp/ferry-ftp-servers)" >&2
        exit 2
        ;;
esac

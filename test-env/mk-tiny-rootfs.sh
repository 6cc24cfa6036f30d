#!/usr/bin/env bash
# Builds a small root filesystem for the runbook test image, without any registry: the
# host's bash, python3 and a set of core tools, with exactly the shared libraries they load.
# Usage: mk-tiny-rootfs.sh DIR
set -euo pipefail
root=${1:?usage: mk-tiny-rootfs.sh DIR}
rm -rf "$root"
mkdir -p "$root"/{usr/bin,usr/lib/x86_64-linux-gnu,usr/lib64,etc,tmp,runbook,proc,dev,sys}
ln -s usr/bin "$root/bin"; ln -s usr/lib "$root/lib"; ln -s usr/lib64 "$root/lib64"

copy_with_libs() {
  local bin=$1
  [ -e "$bin" ] || return 0
  install -D -m 0755 "$(readlink -f "$bin")" "$root/usr/bin/$(basename "$bin")"
  ldd "$bin" 2>/dev/null | awk '/=>/ {print $3} /ld-linux/ {print $1}' | while read -r lib; do
    [ -n "$lib" ] && [ -e "$lib" ] || continue
    local real; real=$(readlink -f "$lib")
    case "$lib" in
      */ld-linux*) install -D -m 0755 "$real" "$root/usr/lib64/$(basename "$lib")" ;;
      *) install -D -m 0644 "$real" "$root/usr/lib/x86_64-linux-gnu/$(basename "$lib")" ;;
    esac
  done
}

for b in bash sh cat echo env ls sleep head tail tr id touch mkdir rm cp mv sort uniq wc \
         grep sed awk cut date dirname basename printf true false test timeout kill ps \
         seq yes dd uname hostname readlink stat chmod nproc tee xargs find setsid; do
  p=$(command -v "$b" 2>/dev/null || true)
  case "$p" in /*) copy_with_libs "$p" ;; esac
done
# The worker's relay (its own binary, mapped in for runs with Azure or AKS access) needs
# these besides what bash and python bring.
for lib in libgcc_s.so.1 libz.so.1; do
  f=/lib/x86_64-linux-gnu/$lib
  [ -e "$f" ] && install -D -m 0644 "$(readlink -f "$f")" "$root/usr/lib/x86_64-linux-gnu/$lib"
done
py=/usr/bin/python3.11
copy_with_libs "$py"
ln -sf python3.11 "$root/usr/bin/python3"
mkdir -p "$root/usr/lib/python3.11"
( cd /usr/lib/python3.11 && tar --exclude=test --exclude=idlelib --exclude=tkinter \
    --exclude=ensurepip --exclude=lib2to3 --exclude=pydoc_data --exclude='config-*' \
    --exclude=__pycache__ --exclude=site-packages --exclude=dist-packages -cf - . ) \
  | tar -C "$root/usr/lib/python3.11" -xf -
for so in /usr/lib/python3.11/lib-dynload/*.so; do
  ldd "$so" 2>/dev/null | awk '/=>/ {print $3}' | while read -r lib; do
    [ -e "$lib" ] && install -D -m 0644 "$(readlink -f "$lib")" "$root/usr/lib/x86_64-linux-gnu/$(basename "$lib")"
  done
done
cat > "$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/bash
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
P
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$root/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n' > "$root/etc/hosts"
chmod 1777 "$root/tmp"

#!/usr/bin/env bash
# Builds the lab guest: a Debian cloud kernel and a busybox initramfs, into a cache
# directory outside the repository. Quick and silent when the cache is current.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${KEIZOKU_CACHE:-/var/cache/keizoku}
out=$cache/guest
mkdir -p "$out" "$cache/debs"

# The source of the image is this directory plus the busybox binary: rebuild when they change.
stamp=$( (cd "$here" && find init modules www -type f | sort | xargs sha256sum; sha256sum /bin/busybox) | sha256sum | cut -c1-16)
if [[ -f $out/stamp && $(cat "$out/stamp") == "$stamp" && -f $out/vmlinuz && -f $out/initramfs.gz ]]; then
  exit 0
fi

# The kernel: the package the cloud meta-package points at, downloaded once, never installed.
if [[ ! -f $out/vmlinuz || $(cat "$out/modules.list" 2>/dev/null) != $(cat "$here/modules") ]]; then
  pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  [[ -n $pkg ]] || { echo "build-image: cannot find the Debian cloud kernel package (run apt-get update)" >&2; exit 1; }
  deb=$(ls "$cache"/debs/"$pkg"_*.deb 2>/dev/null | head -n1 || true)
  if [[ -z $deb ]]; then
    (cd "$cache/debs" && apt-get download -q "$pkg" >/dev/null 2>&1) \
      || { echo "build-image: apt-get download $pkg failed" >&2; exit 1; }
    deb=$(ls "$cache"/debs/"$pkg"_*.deb | head -n1)
  fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  dpkg -x "$deb" "$tmp"
  cp "$tmp"/boot/vmlinuz-* "$out/vmlinuz.new" && mv "$out/vmlinuz.new" "$out/vmlinuz"
  rm -rf "$out/modules" && mkdir -p "$out/modules"
  for m in $(cat "$here/modules"); do
    f=$(find "$tmp/lib/modules" -name "$m.ko" | head -n1)
    [[ -n $f ]] || { echo "build-image: module $m not in $pkg" >&2; exit 1; }
    cp "$f" "$out/modules/"
  done
  basename "$deb" >"$out/kernel-package"
  cp "$here/modules" "$out/modules.list"
fi

root=$(mktemp -d)
trap 'rm -rf "$root" "${tmp:-}"' EXIT
mkdir -p "$root"/{bin,lib/modules,www,proc,sys,dev,run,tmp,etc}
cp /bin/busybox "$root/bin/busybox"
cp "$out"/modules/*.ko "$root/lib/modules/"
cp "$here/modules" "$root/lib/modules/order"
cp "$here/init" "$root/init"
cp -r "$here/www/." "$root/www/"
chmod 755 "$root/init" "$root"/www/cgi-bin/*
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) >"$out/initramfs.gz.new"
mv "$out/initramfs.gz.new" "$out/initramfs.gz"
echo "$stamp" >"$out/stamp"
echo "build-image: guest image ready in $out"

#!/bin/sh
# make run's download:  tools/fetch_cifar.sh URL MD5 DEST
# Fetches the archive at URL (curl, else wget) into a fresh .cifar-download
# folder beside DEST, checks its MD5 before unpacking it, and moves the
# unpacked folder (named as DEST is) into place last, so DEST appears whole or
# not at all. On any failure the download is deleted and the reason said, so
# the next call starts afresh.
set -u
if [ $# -ne 3 ]; then
    echo "usage: $0 URL MD5 DEST" >&2
    exit 2
fi
url=$1
md5=$2
dest=$3
work=$(dirname "$dest")/.cifar-download
archive=$work/$(basename "$url")
name=$(basename "$dest")

fail() {
    rm -rf "$work"
    echo "fetch_cifar: $*" >&2
    exit 1
}

rm -rf "$work" && mkdir -p "$work" || fail "cannot create $work"
echo "fetching $url"
if command -v curl >/dev/null 2>&1; then
    curl -fL -o "$archive" "$url" ||
        fail "download failed (curl exit status $?); deleted the partial download, run again"
elif command -v wget >/dev/null 2>&1; then
    wget -O "$archive" "$url" ||
        fail "download failed (wget exit status $?); deleted the partial download, run again"
else
    fail "needs curl or wget to download $url"
fi

if command -v md5sum >/dev/null 2>&1; then
    got=$(md5sum <"$archive" | cut -d' ' -f1)
elif command -v md5 >/dev/null 2>&1; then
    got=$(md5 -q "$archive")
else
    fail "needs md5sum (or md5) to check the download; deleted it"
fi
if [ "$got" != "$md5" ]; then
    fail "$(basename "$archive"): MD5 $got, expected $md5: the download is truncated or damaged; deleted it, run again"
fi
echo "MD5 $got: as expected"

tar xzf "$archive" -C "$work" || fail "cannot unpack $(basename "$archive"); deleted it"
[ -d "$work/$name" ] || fail "$(basename "$archive") holds no folder $name; deleted it"
mv "$work/$name" "$dest" || fail "cannot move $name to $dest"
rm -rf "$work"

# shellcheck shell=bash
# Builder of a substitute package made of host programs: $out/bin holds symlinks to the
# executables the named Debian packages install (dpkg's own file lists), plus explicitly
# named host files; $out/lib the named libraries. Nothing else of the host reaches PATH.
set -eu
/bin/mkdir -p "$out/bin" "$out/lib"
for deb in $debianPackages; do
  if ! /usr/bin/dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | /bin/grep -q 'ok installed'; then
    echo "offline nixpkgs: package $name needs the Debian package $deb on this host (apt-get install $deb)" >&2
    exit 1
  fi
  /usr/bin/dpkg-query -L "$deb" | while read -r file; do
    case "$file" in
      /bin/* | /sbin/* | /usr/bin/* | /usr/sbin/*) ;;
      *) continue ;;
    esac
    [ -x "$file" ] && [ ! -d "$file" ] || continue
    link="$out/bin/$(/usr/bin/basename "$file")"
    [ -e "$link" ] || /bin/ln -s "$file" "$link"
  done
done
for entry in $hostBins; do
  target="${entry#*=}"
  if [ ! -x "$target" ]; then
    echo "offline nixpkgs: package $name needs $target on this host" >&2
    exit 1
  fi
  /bin/ln -sf "$target" "$out/bin/${entry%%=*}"
done
for entry in $hostLibs; do
  target="${entry#*=}"
  if [ ! -e "$target" ]; then
    echo "offline nixpkgs: package $name needs the library $target on this host" >&2
    exit 1
  fi
  /bin/ln -sf "$target" "$out/lib/${entry%%=*}"
done
for entry in $scripts; do
  # name=file: small wrappers of this substitute (e.g. the musl cc).
  /bin/cp "${entry#*=}" "$out/bin/${entry%%=*}"
  /bin/chmod +x "$out/bin/${entry%%=*}"
done
/bin/rmdir --ignore-fail-on-non-empty "$out/bin" "$out/lib"

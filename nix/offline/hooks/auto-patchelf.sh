# shellcheck shell=bash
# What nixpkgs' autoPatchelfHook does for the libraries: every shared library an ELF file
# of the output needs must be found in the output, in the lib/ of a build input, or in
# the C library (glibc's, or musl's libc.so for rust-std of musl targets; the real hook
# takes them from stdenv's libc), else the build fails; the directories of libraries
# found in inputs join the file's RUNPATH. Unlike the real hook, the interpreter stays the
# host's loader (the substitute's C library is the host's).
autoPatchelfCheck() {
  local libDirs=() pkg file needed found dir rpath
  for pkg in $out ${buildInputs:-} ${depsHostHost:-} ${propagatedBuildInputs:-}; do
    [ -d "$pkg/lib" ] && libDirs+=("$pkg/lib")
  done
  while IFS= read -r -d '' file; do
    isELF "$file" || continue
    rpath=""
    while read -r needed; do
      case "$needed" in
        libc.so | libc.so.* | libm.so.* | libdl.so.* | libpthread.so.* | librt.so.* | libutil.so.* | ld-linux*) continue ;;
      esac
      found=""
      for dir in "$(dirname "$file")" "${libDirs[@]}"; do
        if [ -e "$dir/$needed" ]; then
          found="$dir"
          break
        fi
      done
      if [ -z "$found" ]; then
        echo "auto-patchelf: could not satisfy dependency $needed wanted by $file" >&2
        return 1
      fi
      # Every directory a dependency was found in joins RUNPATH, the output's own too:
      # a file may sit elsewhere in the output than its libraries (rust-objcopy's
      # $ORIGIN/../lib is not where the rustc component keeps libLLVM).
      if [ "$found" != "$(dirname "$file")" ] && [[ ":$rpath:" != *":$found:"* ]]; then
        rpath="${rpath:+$rpath:}$found"
      fi
    done < <(@readelf@ -d "$file" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
    if [ -n "$rpath" ]; then
      echo "auto-patchelf: $file: RUNPATH += $rpath"
      patchelf --add-rpath "$rpath" "$file"
    fi
  done < <(find "$out" -type f -print0)
}
postFixupHooks+=(autoPatchelfCheck)

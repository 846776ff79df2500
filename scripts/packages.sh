# scripts/packages.sh — sourced by run.sh and test.sh.
# ensure_packages PKG...: apt-get install the packages that are not installed (as root, or with sudo); if the
# install fails (stale or missing package lists on a fresh machine), run `apt-get update` once and retry.
ensure_packages() {
  local missing=() pkg who
  who=$(basename "$0")
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo > /dev/null || { echo "${who}: need root or sudo to install: ${missing[*]}" >&2; return 1; }
    sudo=(sudo)
  fi
  echo "${who}: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"; then
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
}

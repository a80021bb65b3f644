#!/usr/bin/env bash
# Installs the one-file binary as the systemd service headless-meeting-bot (as root).
#
#   systemd/install.sh [BINARY]            install or upgrade, then (re)start
#   systemd/install.sh --no-start [BINARY] install, enable, do not start
#   systemd/install.sh --uninstall         stop, disable, remove binary and unit;
#                                          keep settings and recordings
#   systemd/install.sh --uninstall --purge also remove settings, plugins and
#                                          recordings
#   --root DIR                             install under DIR (packaging, tests);
#                                          systemctl is not called
#
# BINARY defaults to dist/headless-meeting-bot beside this script's checkout, or to
# headless-meeting-bot beside this script (a copied release folder).
# Layout: /opt/headless-meeting-bot/headless-meeting-bot (+ plugins/ for third-party
# plugins), /usr/local/bin/headless-meeting-bot -> it, /etc/headless-meeting-bot/env
# (never overwritten), /etc/systemd/system/headless-meeting-bot.service.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name=headless-meeting-bot

root=""
action=install
start=1
purge=0
binary=""
while [ $# -gt 0 ]; do
    case "$1" in
        --uninstall) action=uninstall ;;
        --purge) purge=1 ;;
        --no-start) start=0 ;;
        --root) root="$(realpath -m "$2")"; shift ;;
        -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
        -*) echo "install.sh: unknown option $1" >&2; exit 2 ;;
        *) binary="$1" ;;
    esac
    shift
done

prefix="$root/opt/$name"
etc="$root/etc/$name"
unit="$root/etc/systemd/system/$name.service"
link="$root/usr/local/bin/$name"

# systemctl only on the real root of a host where systemd is running.
use_systemctl=0
if [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    use_systemctl=1
fi
if [ -z "$root" ] && [ "$(id -u)" != 0 ]; then
    echo "install.sh: run as root (sudo $0 $*)" >&2
    exit 1
fi

if [ "$action" = uninstall ]; then
    if [ "$use_systemctl" = 1 ]; then
        # Stopping leaves every meeting first (TimeoutStopSec in the unit).
        systemctl disable --now "$name.service" 2>/dev/null || true
    fi
    rm -f "$unit" "$link" "$prefix/$name" "$prefix/README.md"
    if [ "$use_systemctl" = 1 ]; then systemctl daemon-reload; fi
    if [ "$purge" = 1 ]; then
        rm -rf "$etc" "$prefix" "$root/var/lib/$name" "$root/var/lib/private/$name"
        echo "removed $name, its settings, plugins and recordings"
    else
        rmdir "$prefix" 2>/dev/null || true
        echo "removed $name; kept $etc, $prefix/plugins and /var/lib/$name" \
            "(--purge removes them)"
    fi
    exit 0
fi

if [ -z "$binary" ]; then
    for candidate in "$here/../dist/$name" "$here/$name"; do
        if [ -f "$candidate" ]; then binary="$candidate"; break; fi
    done
fi
if [ -z "$binary" ] || [ ! -f "$binary" ]; then
    echo "install.sh: no binary; build it with packaging/build.sh or name it" >&2
    exit 1
fi
"$binary" --version >/dev/null

install -d -m 0755 "$prefix" "$prefix/plugins" "$(dirname "$link")" \
    "$(dirname "$unit")"
# A new file renamed over the old: a running service keeps its own copy open.
install -m 0755 "$binary" "$prefix/$name.new"
mv -f "$prefix/$name.new" "$prefix/$name"
ln -sfn "/opt/$name/$name" "$link"
# The unit's Documentation=; from a release folder or a checkout.
for readme in "$here/README.md" "$here/../README.md"; do
    if [ -f "$readme" ]; then install -m 0644 "$readme" "$prefix/README.md"; break; fi
done

install -d -m 0755 "$etc"
if [ -e "$etc/env" ]; then
    echo "kept $etc/env (the template is $here/$name.env)"
else
    install -m 0600 "$here/$name.env" "$etc/env"
    echo "wrote $etc/env: set HMB_DRIVER, ZOOM_SDK_KEY and ZOOM_SDK_SECRET there"
fi
install -m 0644 "$here/$name.service" "$unit"
echo "installed $("$prefix/$name" --version) as $prefix/$name and $unit"

if [ "$use_systemctl" = 1 ]; then
    systemctl daemon-reload
    systemctl enable "$name.service"
    if [ "$start" = 1 ]; then
        # restart, not start: an upgrade must run the new binary.
        systemctl restart "$name.service"
        systemctl --no-pager --lines=5 status "$name.service" || true
    fi
else
    echo "systemd is not running here (or --root was given): not enabled or started"
fi

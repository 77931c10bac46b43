#!/usr/bin/env bash
# `npm run package`: dist/packages/tunnelgate_<version>_amd64.deb and
# dist/packages/tunnelgate-<version>-1.x86_64.rpm, with the distributions' own tools
# (dpkg-deb; rpmbuild from Debian's `rpm` package). Self-contained: the helper and CLI
# are one esbuild bundle inside a Node single executable application made from the build
# machine's own node (Node 20's SEA steps with postject), plus the prebuilt N-API addons
# in /usr/lib/tunnelgate/. Needs: node >= 20.12, pandoc, dpkg-deb, rpmbuild, and the
# addons built (npm ci does it).
#
# TUNNELGATE_VERSION overrides package.json's version (the system test builds an upgrade).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The process entry of the CLI+helper, and the module that exports buildProgram().
ENTRY=${TUNNELGATE_ENTRY:-helper/main.ts}
PROGRAM=${TUNNELGATE_PROGRAM:-helper/cli/program.ts}

VERSION=${TUNNELGATE_VERSION:-$(node -p 'require("./package.json").version')}
ARCH_DEB=amd64
ARCH_RPM=x86_64
[ "$(uname -m)" = x86_64 ] || { echo "package: only x86_64 builds are set up" >&2; exit 1; }
for tool in dpkg-deb rpmbuild pandoc; do
  command -v "$tool" >/dev/null || { echo "package: $tool is missing (apt-get install dpkg-dev rpm pandoc)" >&2; exit 1; }
done
for addon in tunnelgate_native tunnelgate_sd; do
  [ -f "build/Release/$addon.node" ] || { echo "package: build/Release/$addon.node is missing: run npm ci (node-gyp builds it)" >&2; exit 1; }
done

out=dist/packages
work=dist/packaging
rm -rf "$work" && mkdir -p "$work" "$out"

echo "==> bundle ($ENTRY) and docs generator"
npx esbuild packaging/bundle.ts --bundle --platform=node --format=esm --packages=external --log-level=warning --outfile="$work/bundle.mjs"
node "$work/bundle.mjs" "$work" "$ENTRY" "$PROGRAM"

echo "==> single executable application from $(command -v node) ($(node -v))"
cat > "$work/sea-config.json" <<JSON
{ "main": "$work/tunnelgate.cjs", "output": "$work/sea-prep.blob", "disableExperimentalSEAWarning": true }
JSON
node --experimental-sea-config "$work/sea-config.json"
cp "$(command -v node)" "$work/tunnelgate"
chmod u+w "$work/tunnelgate"
npx postject "$work/tunnelgate" NODE_SEA_BLOB "$work/sea-prep.blob" \
  --sentinel-fuse NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2 >/dev/null
"$work/tunnelgate" --version >/dev/null

echo "==> man pages and completion"
node "$work/gen-docs.mjs" "$work/docs"

# The installed tree, shared by both packages. Unit directory: Debian 12 keeps packaged
# units in /lib/systemd/system (usrmerge makes it the same as /usr/lib/systemd/system,
# which the rpm uses).
stage() { # DESTDIR UNITDIR
  local d=$1 unitdir=$2
  install -D -m 0755 "$work/tunnelgate" "$d/usr/bin/tunnelgate"
  install -D -m 0644 build/Release/tunnelgate_native.node "$d/usr/lib/tunnelgate/tunnelgate_native.node"
  install -D -m 0644 build/Release/tunnelgate_sd.node "$d/usr/lib/tunnelgate/tunnelgate_sd.node"
  install -D -m 0644 packaging/systemd/tunnelgate.service "$d$unitdir/tunnelgate.service"
  install -D -m 0644 packaging/systemd/tunnelgate-restore.service "$d$unitdir/tunnelgate-restore.service"
  install -D -m 0644 "packaging/systemd/wg-quick@.service.d/tunnelgate.conf" "$d$unitdir/wg-quick@.service.d/tunnelgate.conf"
  install -D -m 0644 packaging/etc/helper.json "$d/etc/tunnelgate/helper.json"
  install -d -m 0755 "$d/etc/tunnelgate/profiles.d" "$d/etc/tunnelgate/trusted-keys"
  install -D -m 0644 schema/profile-v1.schema.json "$d/usr/share/tunnelgate/profile-v1.schema.json"
  install -D -m 0644 "$work/docs/tunnelgate.8" "$d/usr/share/man/man8/tunnelgate.8"
  install -D -m 0644 "$work/docs/tunnelgate-profile.5" "$d/usr/share/man/man5/tunnelgate-profile.5"
  gzip -9n "$d/usr/share/man/man8/tunnelgate.8" "$d/usr/share/man/man5/tunnelgate-profile.5"
  install -D -m 0644 "$work/docs/tunnelgate.bash" "$d/usr/share/bash-completion/completions/tunnelgate"
  install -D -m 0644 "$work/docs/tunnelgate.fish" "$d/usr/share/fish/vendor_completions.d/tunnelgate.fish"
  install -D -m 0644 packaging/copyright "$d/usr/share/doc/tunnelgate/copyright"
}

# Runtime dependencies: nftables (nft), iproute2 (ip), mount (mount/umount), procps
# (kill, for ExecReload=), and the
# libraries the build machine's node links (ldd: libc, libstdc++, libgcc_s).
DEB_DEPENDS="nftables, iproute2, mount, procps, libc6 (>= 2.28), libstdc++6 (>= 10), libgcc-s1"
RPM_REQUIRES="nftables iproute util-linux procps-ng glibc libstdc++ libgcc"
DESCRIPTION_SHORT="per-application gatekeeper for a workstation's WireGuard tunnel"

echo "==> .deb"
deb=$work/deb
stage "$deb" /lib/systemd/system
install -d "$deb/DEBIAN"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$deb/DEBIAN/"
# Every file under /etc/tunnelgate is a conffile: an upgrade never overwrites an admin's edit.
(cd "$deb" && find etc -type f | sed 's|^|/|' | sort) > "$deb/DEBIAN/conffiles"
printf 'tunnelgate (%s) unstable; urgency=medium\n\n  * Release %s.\n\n -- tunnelgate maintainers <maintainers@tunnelgate.invalid>  %s\n' \
  "$VERSION" "$VERSION" "$(date -R -d @"${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")" |
  gzip -9n > "$deb/usr/share/doc/tunnelgate/changelog.Debian.gz"
installed_size=$(du -sk --exclude=DEBIAN "$deb" | cut -f1)
cat > "$deb/DEBIAN/control" <<CONTROL
Package: tunnelgate
Version: $VERSION
Architecture: $ARCH_DEB
Maintainer: tunnelgate maintainers <maintainers@tunnelgate.invalid>
Installed-Size: $installed_size
Depends: $DEB_DEPENDS
Section: net
Priority: optional
Description: $DESCRIPTION_SHORT
 A root helper confines a WireGuard tunnel interface to the programs that a signed IT
 profile allows, with its own nftables table and net_cls cgroups, deciding by the
 kernel-resolved binary of each process. Includes the tunnelgate CLI, the systemd
 units that put the gate in force before any tunnel comes up at boot, man pages and
 shell completion. Self-contained: carries its own Node.js runtime.
CONTROL
dpkg-deb --root-owner-group -Zzstd -z9 --build "$deb" "$out/tunnelgate_${VERSION}_${ARCH_DEB}.deb" >/dev/null

echo "==> .rpm"
rpmtop=$(realpath "$work")/rpm
mkdir -p "$rpmtop"/{BUILD,RPMS,SPECS,BUILDROOT}
stage "$rpmtop/tree" /usr/lib/systemd/system
# Every file under /etc is %config(noreplace), as every one is a conffile of the .deb.
conffiles=$(cd "$rpmtop/tree" && find etc -type f | sort | sed 's|^|%config(noreplace) /|')
awk -v conf="$conffiles" '$0 == "@CONFFILES@" { print conf; next } { print }' packaging/rpm/tunnelgate.spec.in |
  sed -e "s|@VERSION@|${VERSION//-/_}|g" -e "s|@REQUIRES@|$RPM_REQUIRES|g" -e "s|@SUMMARY@|$DESCRIPTION_SHORT|g" \
  > "$rpmtop/SPECS/tunnelgate.spec"
rpmbuild -bb --quiet --target "$ARCH_RPM" \
  --define "_topdir $rpmtop" --define "_tree $rpmtop/tree" \
  --define '__os_install_post %{nil}' --define '_build_id_links none' --define 'debug_package %{nil}' \
  --define '_binary_payload w9.zstdio' \
  "$rpmtop/SPECS/tunnelgate.spec"
cp "$rpmtop/RPMS/$ARCH_RPM/tunnelgate-${VERSION//-/_}-1.$ARCH_RPM.rpm" "$out/"

echo "==> done"
ls -l "$out"/tunnelgate_"${VERSION}"_${ARCH_DEB}.deb "$out"/tunnelgate-"${VERSION//-/_}"-1.${ARCH_RPM}.rpm

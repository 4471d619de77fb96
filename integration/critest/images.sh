#!/bin/bash
# Build the stand-ins for the images critest pulls and push them to the
# local registry ADDR (INSIDE the test VM, as root; buildah):
#
#   integration/critest/images.sh 127.0.0.1:5000 NNP_BINARY PAUSE_BINARY
#
# Images cannot be pulled here. Each stand-in is a busybox (Debian's
# busybox-static) image doing what critest expects of the upstream image:
# the same user, groups, ports, process names and output. containerd finds
# them through a `_default` registry mirror, so they keep the names critest
# asks for; this script knows only the repository paths. The image pinned
# by digest cannot be matched by a stand-in and is not pushed.
set -euo pipefail
reg=${1:?registry address}
nnp=${2:?the nonewprivs stand-in binary}
pause=${3:?the pause stand-in binary}
e2e=e2e-test-images
cri=k8s-staging-cri-tools

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# new_rootfs CONTAINER: busybox with its applets, passwd and group files.
new_rootfs() {
	local mnt a
	mnt=$(buildah mount "$1")
	mkdir -p "$mnt/bin" "$mnt/tmp" "$mnt/etc" "$mnt/var/run" "$mnt/root"
	chmod 1777 "$mnt/tmp"
	cp /bin/busybox "$mnt/bin/busybox"
	# Hard links, as in the busybox image: masking /bin/ls must not mask
	# the busybox binary behind it.
	for a in $("$mnt/bin/busybox" --list); do
		[[ -e $mnt/bin/$a ]] || ln "$mnt/bin/busybox" "$mnt/bin/$a"
	done
	# Applets Debian's busybox-static lacks and critest runs.
	cat >"$mnt/bin/pgrep" <<-'EOS'
		#!/bin/sh
		# pgrep NAME: the pids whose comm is NAME
		found=1
		for d in /proc/[0-9]*; do
			read -r c <"$d/comm" 2>/dev/null && [ "$c" = "$1" ] && echo "${d#/proc/}" && found=0
		done
		exit $found
	EOS
	cat >"$mnt/bin/ipcs" <<-'EOS'
		#!/bin/sh
		# ipcs -m: key and shmid of each shared memory segment
		echo "key shmid"
		awk 'NR > 1 { print $1, $2 }' /proc/sysvipc/shm
	EOS
	chmod 755 "$mnt/bin/pgrep" "$mnt/bin/ipcs"
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'www-data:x:33:33:www-data:/var/www:/bin/false' \
		'nobody:x:65534:65534:nobody:/home:/bin/false' >"$mnt/etc/passwd"
	printf '%s\n' 'root:x:0:' 'www-data:x:33:' 'nogroup:x:65534:' >"$mnt/etc/group"
	echo "$mnt"
}

# push IMAGE PATH:TAG...: push the local image to each repository path.
push() {
	local img=$1 ref
	shift
	for ref in "$@"; do
		buildah push -q --tls-verify=false "$img" "docker://$reg/$ref" >/dev/null ||
			{ echo "images: push $ref failed" >&2; return 1; }
	done
}

# commit CONTAINER IMAGE [buildah config options...]
commit() {
	local c=$1 img=$2
	shift 2
	(($# == 0)) || buildah config "$@" "$c" >/dev/null
	buildah commit -q "$c" "$img" >/dev/null
}

c=$(buildah from scratch)
mnt=$(new_rootfs "$c")
buildah umount "$c" >/dev/null
commit "$c" critest-busybox --cmd '["/bin/sh"]' --env PATH=/bin:/usr/sbin:/usr/bin
push critest-busybox "$e2e/busybox:1.29-2"

# One image per user critest expects to find in the image config.
for u in test-image-user-uid=1002 test-image-user-username=www-data \
	test-image-user-uid-group=1003:1004 test-image-user-username-group=www-data:1004; do
	commit "$c" "critest-${u%%=*}" --user "${u#*=}"
	push "critest-${u%%=*}" "$cri/${u%%=*}:latest"
done
buildah config --user root "$c" >/dev/null

# Distinct images (one file named after each) and one image with many tags.
for name in test-image-latest test-image-1 test-image-2 test-image-3 test-image-tags tag-test tag-all; do
	c2=$(buildah from critest-busybox)
	m2=$(buildah mount "$c2")
	touch "$m2/$name"
	buildah umount "$c2" >/dev/null
	commit "$c2" "critest-$name"
	buildah rm "$c2" >/dev/null
done
push critest-test-image-latest "$cri/test-image-latest:latest"
push critest-test-image-1 "$cri/test-image-1:latest"
push critest-test-image-2 "$cri/test-image-2:latest"
push critest-test-image-3 "$cri/test-image-3:latest"
push critest-test-image-tags "$cri/test-image-tags:1" "$cri/test-image-tags:2" "$cri/test-image-tags:3"
push critest-tag-test "$cri/test-image-tag:test"
push critest-tag-all "$cri/test-image-tag:all"

# A user and a group defined in the image, the user's default uid 1000.
c2=$(buildah from critest-busybox)
m2=$(buildah mount "$c2")
echo 'default-user:x:1000:1000::/home/default-user:/bin/sh' >>"$m2/etc/passwd"
printf '%s\n' 'default-user:x:1000:' 'group-defined-in-image:x:50000:default-user' >>"$m2/etc/group"
buildah umount "$c2" >/dev/null
commit "$c2" critest-predefined-group --user 1000
buildah rm "$c2" >/dev/null
push critest-predefined-group "$cri/test-image-predefined-group:latest"

# Web servers: a process named nginx (a script; its command line says
# "master process", as nginx's does) that writes /var/run/nginx.pid and
# serves / with busybox httpd on PORT.
web() {
	local img=$1 port=$2 c2 m2
	c2=$(buildah from critest-busybox)
	m2=$(buildah mount "$c2")
	mkdir -p "$m2/usr/sbin" "$m2/usr/share/nginx/html"
	echo '<html><body>stand-in web server</body></html>' >"$m2/usr/share/nginx/html/index.html"
	cat >"$m2/usr/sbin/nginx" <<-EOS
		#!/bin/sh
		trap 'exit 0' TERM INT
		httpd -p $port -h /usr/share/nginx/html || exit 1
		echo \$\$ >/var/run/nginx.pid
		while :; do sleep 3600 & wait \$!; done
	EOS
	chmod 755 "$m2/usr/sbin/nginx"
	buildah umount "$c2" >/dev/null
	commit "$c2" "$img" --cmd '["/usr/sbin/nginx", "master process"]' --port "$port"
	buildah rm "$c2" >/dev/null
}
web critest-nginx 80
push critest-nginx "$e2e/nginx:1.14-2"
web critest-hostnet-nginx 12003
push critest-hostnet-nginx "$cri/hostnet-nginx-amd64:latest"

# httpd: says so in its log, serves / on port 80.
c2=$(buildah from critest-busybox)
m2=$(buildah mount "$c2")
mkdir -p "$m2/htdocs"
echo '<html><body>stand-in httpd</body></html>' >"$m2/htdocs/index.html"
buildah umount "$c2" >/dev/null
commit "$c2" critest-httpd --cmd '["/bin/sh", "-c", "echo httpd stand-in serving on port 80; exec httpd -f -p 80 -h /htdocs"]' --port 80
buildah rm "$c2" >/dev/null
push critest-httpd "$e2e/httpd:2.4.39-4"

# nonewprivs: a setuid-root program printing its effective uid.
c2=$(buildah from critest-busybox)
m2=$(buildah mount "$c2")
mkdir -p "$m2/usr/local/bin"
install -m 4755 -o 0 -g 0 "$nnp" "$m2/usr/local/bin/nnp"
buildah umount "$c2" >/dev/null
commit "$c2" critest-nonewprivs --cmd '["/usr/local/bin/nnp"]'
buildah rm "$c2" >/dev/null
push critest-nonewprivs "$e2e/nonewprivs:1.3"

# pause:3.9 (which critest pulls from two registries and expects as one
# image with exactly those two tags) and the pod sandbox image
# (containerd's sandbox_image in the suite): each only the pause binary, so
# no process of a pod's shared pid namespace is named like the busybox
# applets critest looks for. They differ by a file: one image ID each.
for img in pause skiff-sandbox; do
	c2=$(buildah from scratch)
	m2=$(buildah mount "$c2")
	install -m 755 "$pause" "$m2/pause"
	echo "$img" >"$m2/.stand-in"
	buildah umount "$c2" >/dev/null
	commit "$c2" "critest-$img" --cmd '["/pause"]'
	buildah rm "$c2" >/dev/null
done
push critest-pause pause:3.9
push critest-skiff-sandbox library/skiff-critest-sandbox:latest
buildah rm "$c" >/dev/null

#!/usr/bin/env bash
# Fetch the two eval corpora (Debian's git-doc and apache2-doc) and lay them out as plain HTML.
#
#   examples/eval/fetch_corpora.sh            # fetch + lay out (skips a corpus already laid out)
#   examples/eval/fetch_corpora.sh --force    # rebuild both corpora
#
# Result (gitignored):
#   examples/eval/corpora/git/       git's HTML manual pages (git-*.html, gitglossary.html,
#                                    user-manual.html, howto/, technical/ ...); no .txt twins
#   examples/eval/corpora/apache2/   Apache httpd 2.4 manual, English only (mod/, rewrite/ ...)
#
# A page is named by its path relative to the corpus root ("git-rebase.html",
# "mod/mod_rewrite.html"); questions.jsonl uses those names.
#
# Needs apt-get (Debian/Ubuntu) and dpkg-deb. `apt-get update` is run only when a download fails.
# EVAL_WORK_DIR overrides where the .deb files are downloaded and extracted.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
corpora="$here/corpora"
work="${EVAL_WORK_DIR:-$here/.work}"
force=0
[[ "${1:-}" == "--force" ]] && force=1

# Debian package -> corpus name
declare -A packages=([git-doc]=git [apache2-doc]=apache2)
# The versions questions.jsonl was written against (Debian 12 "bookworm"). Another version
# still works but may have moved some quotes: run check_quotes.py to see.
declare -A built_with=([git-doc]="1:2.39.5-0+deb12u3" [apache2-doc]="2.4.68-1~deb12u1")

count_pages() { find "$1" -type f \( -name '*.html' -o -name '*.htm' \) | wc -l; }

laid_out() {  # a corpus is done when its folder has pages and the marker file
    [[ -f "$1/.complete" ]] && (( $(count_pages "$1") > 0 ))
}

download() {  # download <package> into $work/debs, running apt-get update once if needed
    local package="$1"
    mkdir -p "$work/debs"
    if compgen -G "$work/debs/${package}_*.deb" >/dev/null; then
        return 0
    fi
    (
        cd "$work/debs"
        # apt-get download as root warns that _apt cannot write here; harmless.
        apt-get download "$package" 2>/dev/null || {
            echo "apt-get download $package failed; running apt-get update" >&2
            apt-get update >/dev/null
            apt-get download "$package"
        }
    )
}

extract() {  # extract <package> -> prints the extraction root
    local package="$1" deb root
    deb="$(ls "$work/debs/${package}"_*.deb | head -n 1)"
    root="$work/extracted/$package"
    rm -rf "$root"
    mkdir -p "$root"
    dpkg-deb -x "$deb" "$root"
    echo "$root"
}

layout_git() {  # layout_git <extraction root> <corpus dir>
    local src="$1/usr/share/doc/git-doc" dest="$2"
    [[ -d "$src" ]] || { echo "no $src in git-doc" >&2; exit 1; }
    # Regular files only: index.html is a symlink to git.html (a duplicate page).
    (cd "$src" && find . -type f \( -name '*.html' -o -name '*.htm' \) -print0) |
        while IFS= read -r -d '' rel; do
            rel="${rel#./}"
            mkdir -p "$dest/$(dirname "$rel")"
            cp "$src/$rel" "$dest/$rel"
        done
}

layout_apache2() {  # layout_apache2 <extraction root> <corpus dir>
    local manual="$1/usr/share/doc/apache2-doc/manual" dest="$2"
    [[ -d "$manual" ]] || { echo "no $manual in apache2-doc" >&2; exit 1; }
    if compgen -G "$manual/*.html.en" >/dev/null || compgen -G "$manual/*/*.html.en" >/dev/null; then
        # Upstream layout: content-negotiated pages (foo.html.en, foo.html.fr, ...) side by side.
        (cd "$manual" && find . -name '*.html.en' -print0) |
            while IFS= read -r -d '' rel; do
                rel="${rel#./}"
                mkdir -p "$dest/$(dirname "$rel")"
                cp -L "$manual/$rel" "$dest/${rel%.en}"
            done
    elif [[ -d "$manual/en" ]]; then
        # Debian layout: one folder per language (manual/en/mod/mod_rewrite.html, ...).
        (cd "$manual/en" && find . \( -type f -o -type l \) \( -name '*.html' -o -name '*.htm' \) -print0) |
            while IFS= read -r -d '' rel; do
                rel="${rel#./}"
                mkdir -p "$dest/$(dirname "$rel")"
                cp -L "$manual/en/$rel" "$dest/$rel"
            done
    else
        echo "apache2-doc: neither *.html.en pages nor manual/en/ found" >&2
        exit 1
    fi
}

for package in git-doc apache2-doc; do
    name="${packages[$package]}"
    dest="$corpora/$name"
    if (( ! force )) && laid_out "$dest"; then
        echo "$name: already laid out, $(count_pages "$dest") pages in ${dest#"$here"/}"
        continue
    fi
    download "$package"
    root="$(extract "$package")"
    rm -rf "$dest"
    mkdir -p "$dest"
    "layout_$name" "$root" "$dest"
    rm -rf "$root"  # the laid-out corpus is all that is needed; the .deb stays for --force
    deb="$(ls "$work/debs/${package}"_*.deb | head -n 1)"
    version="$(dpkg-deb -f "$deb" Version)"
    echo "$package $version" >"$dest/.complete"
    echo "$name: $(count_pages "$dest") pages in ${dest#"$here"/} ($package $version)"
    if [[ "$version" != "${built_with[$package]}" ]]; then
        echo "  note: questions.jsonl was written against $package ${built_with[$package]};" \
            "run check_quotes.py to check the quotes still match" >&2
    fi
done

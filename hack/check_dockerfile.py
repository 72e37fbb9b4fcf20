#!/usr/bin/env python3
"""Replay the Dockerfile's build without a Docker engine (run by hack/check-dockerfile.sh).

The stages the final stage copies from are replayed in a directory that stands for the
image's filesystem: COPY/ADD materialise exactly the context files they name, minus what
.dockerignore leaves out; WORKDIR, ARG and ENV are followed; RUN runs its `cargo` commands
as written, and the few file commands around them (cp, install, mv, mkdir, touch, rm, echo
with `>`), with absolute paths mapped into that directory. A RUN cache mount is a persistent
directory of its own (so reruns are incremental), mounted only during that RUN, as BuildKit
does. Then the final stage's COPY --from sources must exist, its
ENTRYPOINT must be an executable it holds, and it must not run as root.

What cannot be replayed faithfully (another command in a RUN, shell syntax beyond `&&`,
heredocs, an external COPY --from image, URLs in ADD) fails the check instead of being
skipped: extend this script when the Dockerfile needs more.
"""

import argparse
import fcntl
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys

PREFIX = "check-dockerfile:"


class CheckError(Exception):
    pass


# ---------------------------------------------------------------------------------------
# .dockerignore, as moby/patternmatcher reads and matches it


class Pattern:
    def __init__(self, text):
        self.exclusion = text.startswith("!")
        if self.exclusion:
            text = text[1:]
            if not text:
                raise CheckError('.dockerignore: illegal exclusion pattern "!"')
        self.text = clean_path(text)
        self.regex = re.compile(compile_pattern(self.text))

    def match(self, path):
        return self.regex.match(path) is not None


def clean_path(p):
    cleaned = os.path.normpath(p).replace(os.sep, "/")
    return "." if cleaned in ("", ".") else cleaned


def compile_pattern(pattern):
    """The regular expression patternmatcher builds for one pattern."""
    out = "^"
    i, n = 0, len(pattern)
    class_start = False
    while i < n:
        ch = pattern[i]
        i += 1
        opened, class_start = class_start, False
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":  # treat **/ as **
                    i += 1
                out += ".*" if i >= n else "(.*/)?"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "\\":
            if i < n:
                out += re.escape(pattern[i])
                i += 1
            else:
                out += "\\\\"
        elif ch in "[]":
            out += ch
            class_start = ch == "["
        elif ch in "!^" and opened:
            out += "^"  # [!x] negates a class, as in filepath.Match
        else:
            out += re.escape(ch)
    return out + "$"


def read_dockerignore(path):
    patterns = []
    if not os.path.exists(path):
        return patterns
    with open(path, encoding="utf-8-sig") as f:
        for line in f.read().splitlines():
            if line.startswith("#"):
                continue
            line = line.strip()
            if not line:
                continue
            invert = line.startswith("!")
            if invert:
                line = line[1:].strip()
            if line:
                line = clean_path(line)
                if len(line) > 1 and line.startswith("/"):
                    line = line[1:]
            patterns.append(Pattern(("!" if invert else "") + line))
    return patterns


def ignored(patterns, rel):
    """MatchesOrParentMatches: the last pattern that matches the path or a parent wins."""
    matched = False
    parents = rel.split("/")[:-1]
    for p in patterns:
        if p.exclusion != matched:
            continue
        hit = p.match(rel)
        if not hit:
            for k in range(1, len(parents) + 1):
                if p.match("/".join(parents[:k])):
                    hit = True
                    break
        if hit:
            matched = not p.exclusion
    return matched


def context_entries(context, patterns):
    """Files (and directories) of the build context that .dockerignore lets through."""
    files, dirs = set(), set()
    has_exceptions = any(p.exclusion for p in patterns)
    for top, subdirs, names in os.walk(context):
        rel_top = os.path.relpath(top, context).replace(os.sep, "/")
        keep = []
        for d in sorted(subdirs):
            rel = d if rel_top == "." else f"{rel_top}/{d}"
            full = os.path.join(top, d)
            if os.path.islink(full):
                if not ignored(patterns, rel):
                    files.add(rel)
                continue
            if ignored(patterns, rel):
                if has_exceptions:
                    keep.append(d)  # an exception may bring something below back
                continue
            dirs.add(rel)
            keep.append(d)
        subdirs[:] = keep
        for name in names:
            rel = name if rel_top == "." else f"{rel_top}/{name}"
            if not ignored(patterns, rel):
                files.add(rel)
                parent = rel.rsplit("/", 1)[0] if "/" in rel else None
                while parent:
                    dirs.add(parent)
                    parent = parent.rsplit("/", 1)[0] if "/" in parent else None
    return files, dirs


# ---------------------------------------------------------------------------------------
# Dockerfile parsing


def logical_lines(text):
    lines = text.splitlines()
    escape = "\\"
    # Parser directives: only at the very top, as `# name=value`.
    for line in lines:
        m = re.match(r"^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$", line)
        if not m:
            break
        if m.group(1).lower() == "escape":
            escape = m.group(2)
    out, buf, start = [], None, 0
    for no, line in enumerate(lines, 1):
        stripped = line.strip()
        if buf is None and (not stripped or stripped.startswith("#")):
            continue
        if buf is not None and (not stripped or stripped.startswith("#")):
            continue  # comments and blank lines inside a continuation are dropped
        if buf is None:
            buf, start = "", no
        body = line.rstrip()
        if body.endswith(escape):
            buf += body[: -len(escape)]
            continue
        buf += body
        out.append((start, buf.strip()))
        buf = None
    if buf is not None:
        out.append((start, buf.strip()))
    return out


class Instruction:
    def __init__(self, line, keyword, rest):
        self.line, self.keyword, self.rest = line, keyword, rest

    def __repr__(self):
        return f"line {self.line}: {self.keyword} {' '.join(self.rest.split())}"


class Stage:
    def __init__(self, index, base, name, line):
        self.index, self.base, self.name, self.line = index, base, name, line
        self.instructions = []


def parse_dockerfile(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    global_args, stages = [], []
    for line, inst in logical_lines(text):
        keyword, _, rest = inst.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if re.search(r"<<-?[\"']?[A-Za-z_]", rest) and keyword in ("RUN", "COPY", "ADD"):
            raise CheckError(f"line {line}: heredocs are not supported by this check")
        if keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            name = None
            if len(words) >= 3 and words[1].lower() == "as":
                name = words[2].lower()
            stages.append(Stage(len(stages), words[0], name, line))
        elif not stages:
            if keyword != "ARG":
                raise CheckError(f"line {line}: {keyword} before the first FROM")
            global_args.append(Instruction(line, keyword, rest))
        else:
            stages[-1].instructions.append(Instruction(line, keyword, rest))
    if not stages:
        raise CheckError("the Dockerfile has no FROM")
    return global_args, stages


def split_flags(rest):
    """`--name=value` flags in front of an instruction's arguments."""
    flags = []
    while rest.startswith("--"):
        word, _, rest = rest.partition(" ")
        flags.append(word[2:])
        rest = rest.lstrip()
    return flags, rest


def flag_values(flags, name):
    return [f.partition("=")[2] for f in flags if f.partition("=")[0] == name]


VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def expand(text, env):
    """Dockerfile variable substitution: $X, ${X}, ${X:-default}, ${X:+alternative}."""

    def sub(m):
        name = m.group(1) or m.group(4)
        value = env.get(name)
        if m.group(2) == ":-":
            return value if value else m.group(3)
        if m.group(2) == ":+":
            return m.group(3) if value else ""
        return value or ""

    return VAR.sub(sub, text)


def arguments(rest, env=None):
    """JSON (exec) form or whitespace-separated words, with variables substituted."""
    rest = rest.strip()
    if rest.startswith("["):
        try:
            words = json.loads(rest)
        except ValueError:
            words = None
        if isinstance(words, list) and all(isinstance(w, str) for w in words):
            return [expand(w, env) if env is not None else w for w in words], True
    words = shlex.split(rest)
    return [expand(w, env) if env is not None else w for w in words], False


# ---------------------------------------------------------------------------------------
# Replaying stages


def inside(path, *roots):
    real = os.path.realpath(path)
    return any(real == r or real.startswith(r.rstrip("/") + "/") for r in map(os.path.realpath, roots))


class Replay:
    def __init__(self, args, stages, global_args):
        self.args = args
        self.stages = stages
        self.context = os.path.abspath(args.context)
        self.work = os.path.abspath(args.work)
        self.cache = os.path.join(self.work, "cache")
        self.build_args = dict(args.build_arg)
        self.global_env = {}
        for inst in global_args:
            self.apply_arg(inst, self.global_env)
        self.platform_args = platform_args()
        self.done = {}
        patterns = read_dockerignore(os.path.join(self.context, ".dockerignore"))
        self.files, self.dirs = context_entries(self.context, patterns)
        self.ran = []

    # -- helpers

    def apply_arg(self, inst, env, outer=None):
        for word in shlex.split(inst.rest):
            name, eq, default = word.partition("=")
            if name in self.build_args:
                env[name] = self.build_args[name]
            elif name in self.platform_args:
                env[name] = self.platform_args[name]
            elif eq:
                env[name] = expand(default, env)
            elif outer is not None and name in outer:
                env[name] = outer[name]

    def stage_ref(self, ref, before):
        ref_l = ref.lower()
        for s in self.stages[:before]:
            if s.name == ref_l or str(s.index) == ref:
                return s
        return None

    def host(self, state, image_path):
        """Where an absolute image path lives in a stage's directory."""
        return os.path.join(state["root"], image_path.lstrip("/"))

    def image_path(self, state, path):
        return os.path.normpath(path if path.startswith("/") else os.path.join(state["workdir"], path))

    # -- stages

    def replay(self, stage):
        if stage.index in self.done:
            return self.done[stage.index]
        parent = self.stage_ref(stage.base, stage.index)
        root = os.path.join(self.work, f"stage-{stage.index}")
        if os.path.lexists(root):
            shutil.rmtree(root)
        if parent is not None:
            base = self.replay(parent)
            shutil.copytree(base["root"], root, symlinks=True)
            state = {"root": root, "workdir": base["workdir"], "env": dict(base["env"]),
                     "user": base["user"], "entrypoint": base["entrypoint"]}
        else:
            os.makedirs(root)
            state = {"root": root, "workdir": "/", "env": {}, "user": None, "entrypoint": None}
        label = stage.name or str(stage.index)
        print(f"{PREFIX} stage {label} (FROM {stage.base}, line {stage.line})", flush=True)
        for inst in stage.instructions:
            self.step(stage, state, inst)
        self.done[stage.index] = state
        return state

    def step(self, stage, state, inst):
        kw, env = inst.keyword, state["env"]
        if kw == "ARG":
            self.apply_arg(inst, env, self.global_env)
        elif kw == "ENV":
            words = shlex.split(inst.rest)
            if words and "=" not in words[0]:  # legacy `ENV name value`
                env[words[0]] = expand(inst.rest.split(None, 1)[1], env)
            else:
                for w in words:
                    name, _, value = w.partition("=")
                    env[name] = expand(value, env)
        elif kw == "WORKDIR":
            state["workdir"] = self.image_path(state, expand(inst.rest, env))
            os.makedirs(self.host(state, state["workdir"]), exist_ok=True)
        elif kw in ("COPY", "ADD"):
            self.copy(stage, state, inst)
        elif kw == "RUN":
            self.run(state, inst)
        elif kw == "USER":
            state["user"] = expand(inst.rest, env)
        elif kw == "ENTRYPOINT":
            state["entrypoint"] = arguments(inst.rest)
        elif kw in ("CMD", "EXPOSE", "LABEL", "HEALTHCHECK", "STOPSIGNAL", "VOLUME", "MAINTAINER"):
            pass
        else:
            raise CheckError(f"{inst}: {kw} is not supported by this check")

    def copy(self, stage, state, inst):
        flags, rest = split_flags(inst.rest)
        words, _ = arguments(rest, state["env"])
        if len(words) < 2:
            raise CheckError(f"{inst}: needs a source and a destination")
        *sources, dest = words
        for f in flags:
            if f.partition("=")[0] not in ("from", "chown", "chmod", "link"):
                raise CheckError(f"{inst}: --{f} is not supported by this check")
        origin = flag_values(flags, "from")
        if inst.keyword == "ADD":
            if origin:
                raise CheckError(f"{inst}: ADD --from")
            for s in sources:
                if re.match(r"^[a-z]+://|^git@", s) or re.search(r"\.(tar|tgz|tar\.\w+)$", s):
                    raise CheckError(f"{inst}: ADD of a URL or an archive is not supported")
        dest_path = self.image_path(state, dest)
        into_dir = dest.endswith("/") or len(sources) > 1 or any(re.search(r"[*?\[]", s) for s in sources)
        if origin:
            src_stage = self.stage_ref(origin[0], stage.index)
            if src_stage is None:
                raise CheckError(f"{inst}: --from={origin[0]} is an image, not a stage of this Dockerfile")
            self.copy_from_stage(state, self.replay(src_stage), sources, dest_path, into_dir, inst)
        else:
            self.copy_from_context(state, sources, dest_path, into_dir, inst)

    def copy_from_context(self, state, sources, dest_path, into_dir, inst):
        for src in sources:
            rel = clean_path(src.lstrip("/"))
            if rel.startswith("../"):
                raise CheckError(f"{inst}: {src} is outside the build context")
            if re.search(r"[*?\[]", rel):
                rx = re.compile(compile_pattern(rel))
                matches = sorted(p for p in self.files | self.dirs if rx.match(p))
                if not matches:
                    raise CheckError(f"{inst}: {src} matches nothing in the build context "
                                     "(missing, or left out by .dockerignore)")
            else:
                if rel != "." and rel not in self.files and rel not in self.dirs:
                    raise CheckError(f"{inst}: {src} is not in the build context "
                                     "(missing, or left out by .dockerignore)")
                matches = [rel]
            for m in matches:
                if m == "." or m in self.dirs:
                    prefix = "" if m == "." else m + "/"
                    target = dest_path
                    for d in sorted(self.dirs):
                        if d.startswith(prefix):
                            os.makedirs(self.host(state, os.path.join(target, d[len(prefix):])), exist_ok=True)
                    os.makedirs(self.host(state, target), exist_ok=True)
                    for f in sorted(self.files):
                        if f.startswith(prefix):
                            self.put(os.path.join(self.context, f),
                                     self.host(state, os.path.join(target, f[len(prefix):])))
                else:
                    target = dest_path
                    if into_dir or os.path.isdir(self.host(state, dest_path)):
                        target = os.path.join(dest_path, os.path.basename(m))
                    self.put(os.path.join(self.context, m), self.host(state, target))
        count = sum(1 for _ in walk_files(self.host(state, dest_path)))
        print(f"{PREFIX}   {inst.keyword} {' '.join(sources)} -> {dest_path} ({count} files there)")

    def copy_from_stage(self, state, src_state, sources, dest_path, into_dir, inst):
        for src in sources:
            if re.search(r"[*?\[]", src):
                raise CheckError(f"{inst}: wildcards in COPY --from are not supported")
            path = self.image_path(src_state, src)
            host = self.host(src_state, path)
            if not os.path.lexists(host):
                raise CheckError(f"{inst}: {path} does not exist in that stage (a cache mount's "
                                 "contents are gone once its RUN ends)")
            if os.path.isdir(host) and not os.path.islink(host):
                shutil.copytree(host, self.host(state, dest_path), symlinks=True, dirs_exist_ok=True)
            else:
                target = dest_path
                if into_dir or os.path.isdir(self.host(state, dest_path)):
                    target = os.path.join(dest_path, os.path.basename(path))
                self.put(host, self.host(state, target))
            print(f"{PREFIX}   COPY --from: {path} -> {dest_path}")

    @staticmethod
    def put(src, dst):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.lexists(dst) and not os.path.isdir(dst):
            os.unlink(dst)
        # copy2 keeps modification times: an unchanged tree is an up-to-date cargo build.
        shutil.copy2(src, dst, follow_symlinks=False)

    # -- RUN

    def run(self, state, inst):
        flags, rest = split_flags(inst.rest)
        mounts = []
        for f in flags:
            name, _, value = f.partition("=")
            if name == "mount":
                opts = {}
                for part in expand(value, state["env"]).split(","):
                    k, _, v = part.partition("=")
                    opts[k] = v
                if opts.get("type") != "cache":
                    raise CheckError(f"{inst}: only cache mounts are supported, not {value}")
                target = opts.get("target") or opts.get("dst") or opts.get("destination")
                if not target:
                    raise CheckError(f"{inst}: cache mount without a target")
                mounts.append((opts.get("id") or target, self.image_path(state, target)))
            elif name not in ("network", "security"):
                raise CheckError(f"{inst}: --{name} is not supported by this check")
        words, exec_form = arguments(rest)
        if exec_form:
            segments = [words]
        else:
            segments = shell_segments(rest, inst)
        hidden = []
        try:
            for ident, target in mounts:
                host = self.host(state, target)
                if os.path.lexists(host):
                    os.rename(host, host + ".check-hidden")
                    hidden.append(host)
                os.makedirs(os.path.dirname(host), exist_ok=True)
                store = os.path.join(self.cache, re.sub(r"[^A-Za-z0-9._-]", "_", ident.strip("/")) or "_")
                os.makedirs(store, exist_ok=True)
                os.symlink(store, host)
            for argv in segments:
                self.exec(state, argv, inst, [self.cache])
        finally:
            for ident, target in mounts:
                host = self.host(state, target)
                if os.path.islink(host):
                    os.unlink(host)
                if host in hidden:
                    os.rename(host + ".check-hidden", host)
                else:
                    os.makedirs(host, exist_ok=True)  # the mount point stays, empty

    def exec(self, state, argv, inst, extra_roots):
        env_assign = {}
        while argv and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", argv[0]):
            k, _, v = argv[0].partition("=")
            env_assign[k] = v
            argv = argv[1:]
        if not argv:
            return
        if any("$" in w for w in argv):
            raise CheckError(f"{inst}: shell variables in RUN are not supported by this check")
        cmd = argv[0]
        if cmd not in REPLAYED:
            raise CheckError(f"{inst}: this check cannot replay `{cmd}` (it runs "
                             f"{', '.join(REPLAYED)} only); extend hack/check_dockerfile.py")
        cwd = self.host(state, state["workdir"])
        redirect = None
        if len(argv) >= 3 and argv[-2] in (">", ">>"):
            redirect, argv = (argv[-2], argv[-1]), argv[:-2]
        if any(w in (">", ">>") for w in argv):
            raise CheckError(f"{inst}: a redirection goes last in its command for this check")
        if redirect:
            argv = argv + [redirect[1]]  # mapped and checked like the other paths
        mapped = [cmd]
        for w in argv[1:]:
            prefix, value = "", w
            if w.startswith("--") and "=" in w:
                flag, _, value = w.partition("=")
                prefix = flag + "="
            if value.startswith("/"):
                value = self.host(state, value)
            if not value.startswith("-") and not inside(os.path.join(cwd, value), state["root"], *extra_roots):
                raise CheckError(f"{inst}: {w} leads outside the image's filesystem")
            mapped.append(prefix + value)
        out = None
        if redirect:
            out = open(os.path.join(cwd, mapped.pop()), "a" if redirect[0] == ">>" else "w")
            argv = argv[:-1] + list(redirect)
        if cmd in ("cp", "install", "mv"):
            # The base image's directories are not here: make the destination's parent.
            dest = os.path.join(cwd, [w for w in mapped[1:] if not w.startswith("-")][-1])
            os.makedirs(dest if dest.endswith("/") else os.path.dirname(dest), exist_ok=True)
        env = build_env(state["env"])
        env.update(env_assign)
        shown = " ".join(w if w in (">", ">>") else shlex.quote(w) for w in argv)
        print(f"{PREFIX}   RUN {shown}   (in {cwd})", flush=True)
        try:
            rc = subprocess.call(mapped, cwd=cwd, env=env, stdout=out)
        finally:
            if out:
                out.close()
        if rc != 0:
            why = ("the Dockerfile's build stage does not build from the files it copies"
                   if cmd == "cargo" else "see the output above")
            raise CheckError(f"{inst}: `{shown}` exited {rc}: {why}")
        if cmd == "cargo":
            self.ran.append(shown)


REPLAYED = ("cargo", "cp", "install", "mv", "mkdir", "touch", "rm", "echo")


def shell_segments(command, inst):
    """A `&&` chain of simple commands; `>`/`>>` redirections stay in as words."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    segments, current = [], []
    for tok in lexer:
        if tok == "&&":
            segments.append(current)
            current = []
        elif tok in (">", ">>"):
            current.append(tok)
        elif tok and all(c in "();<>|&" for c in tok):
            raise CheckError(f"{inst}: shell operator `{tok}` is not supported by this check "
                             "(only `&&` chains and `>` redirections)")
        else:
            current.append(tok)
    segments.append(current)
    if any(not s for s in segments):
        raise CheckError(f"{inst}: empty command in a `&&` chain")
    return segments


def walk_files(path):
    if os.path.isfile(path):
        yield path
        return
    for top, _, names in os.walk(path):
        for n in names:
            yield os.path.join(top, n)


def build_env(dockerfile_env):
    """The host's environment without what would make cargo build differently, plus the
    Dockerfile's ARG/ENV values (BuildKit gives RUN both)."""
    env = {}
    keep_cargo = ("CARGO_HOME", "CARGO_TERM_", "CARGO_NET_", "CARGO_HTTP_", "CARGO_REGISTRIES_")
    for k, v in os.environ.items():
        if k.startswith("CARGO_") and not k.startswith(keep_cargo):
            continue
        if k in ("RUSTFLAGS", "RUSTDOCFLAGS", "RUSTC_WRAPPER", "RUSTC_WORKSPACE_WRAPPER"):
            continue
        env[k] = v
    env.update(dockerfile_env)
    return env


def platform_args():
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower())
    plat = f"linux/{arch}"
    return {"TARGETPLATFORM": plat, "TARGETOS": "linux", "TARGETARCH": arch, "TARGETVARIANT": "",
            "BUILDPLATFORM": plat, "BUILDOS": "linux", "BUILDARCH": arch, "BUILDVARIANT": ""}


# ---------------------------------------------------------------------------------------


def check(args):
    global_args, stages = parse_dockerfile(args.dockerfile)
    replay = Replay(args, stages, global_args)
    final = stages[-1]
    if replay.stage_ref(final.base, final.index) is not None:
        raise CheckError(f"the final stage (line {final.line}) builds on a stage: expected a "
                         "runtime image such as distroless")
    if not any(i.keyword == "COPY" and flag_values(split_flags(i.rest)[0], "from")
               for i in final.instructions):
        raise CheckError("the final stage copies nothing from a build stage")
    for inst in final.instructions:
        if inst.keyword == "RUN":
            raise CheckError(f"{inst}: the final stage is distroless (no shell): no RUN there")
    state = replay.replay(final)
    if not replay.ran:
        raise CheckError("no build stage ran cargo")
    user = (state["user"] or "").split(":")[0]
    if user in ("", "0", "root"):
        raise CheckError("the final stage runs as root: set USER to a numeric nonroot uid")
    entry = state["entrypoint"]
    if not entry or not entry[1] or not entry[0] or not entry[0][0].startswith("/"):
        raise CheckError("the final stage needs an exec-form ENTRYPOINT with an absolute path "
                         "(distroless has no shell)")
    exe = replay.host(state, entry[0][0])
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        raise CheckError(f"ENTRYPOINT {entry[0][0]} is not an executable file in the final stage")
    if args.smoke:
        out = subprocess.run([exe, *args.smoke], capture_output=True, text=True)
        if out.returncode != 0:
            raise CheckError(f"{entry[0][0]} {' '.join(args.smoke)} exited {out.returncode}: "
                             f"{out.stderr.strip()}")
        print(f"{PREFIX} {entry[0][0]} {' '.join(args.smoke)}: {out.stdout.strip()}")
    print(f"{PREFIX} ok: the build stage builds from what the Dockerfile copies "
          f"({len(replay.files)} context files after .dockerignore)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dockerfile", default="Dockerfile")
    ap.add_argument("--context", default=".")
    ap.add_argument("--work", required=True,
                    help="directory for the replayed stages and the cache mounts (kept between runs)")
    ap.add_argument("--build-arg", action="append", default=[], metavar="NAME=VALUE",
                    type=lambda s: (s.partition("=")[0], s.partition("=")[2] if "=" in s
                                    else os.environ.get(s, "")))
    ap.add_argument("--smoke", nargs="*", default=["--version"],
                    help="arguments to run the final ENTRYPOINT executable with (default --version)")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    with open(os.path.join(args.work, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            check(args)
        except CheckError as e:
            print(f"{PREFIX} FAILED: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

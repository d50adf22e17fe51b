"""glupy.AnswerTable on real bricks: answers a translator decided, given by
the host without Python (issue 14, item 1). Judged by what the client gets
and by how many requests reached Python."""

import errno
import json
import os
import threading
import time
from pathlib import Path

import pytest

import glusterlib

XLATORS = Path(__file__).parent / "xlators"
EXAMPLES = Path(__file__).parent.parent / "examples"


def rules_brick(gluster, posix_options=None, **options):
    opts = {"module-name": "table_rules", "module-path": str(XLATORS)}
    opts.update({k.replace("_", "-"): str(v) for k, v in options.items()})
    return gluster.brick([("features/glupy", opts, "rules")], posix_options=posix_options)


def stats(client):
    return json.loads(client.getxattr("/", "user.rules.stats"))


def errno_of(call, *args):
    with pytest.raises(OSError) as failure:
        call(*args)
    return failure.value.errno


def test_a_decision_made_once_in_python_is_given_by_the_host_after(gluster):
    client = gluster.gfapi(rules_brick(gluster))
    client.mkdir("/d")
    assert errno_of(client.creat, "/a.tmp") == errno.EACCES
    assert errno_of(client.creat, "/a.tmp") == errno.EACCES
    assert errno_of(client.creat, "/d/a.tmp") == errno.EACCES  # a name table: any directory
    client.write_file("/a.txt", b"fine")
    s = stats(client)
    assert s["in_python"]["create"] == 2, s  # a.tmp once, a.txt once
    assert s["create"]["hits"] == 2 and s["create"]["entries"] == 1


def test_missing_names_are_answered_until_they_expire(gluster):
    client = gluster.gfapi(rules_brick(gluster, ttl=1))
    for _ in range(4):
        assert errno_of(client.stat, "/absent") == errno.ENOENT
    s = stats(client)
    assert s["lookup"]["hits"] >= 3 and s["lookup"]["entries"] == 1
    in_python = s["lookups_of"]["absent"]
    time.sleep(1.3)
    assert errno_of(client.stat, "/absent") == errno.ENOENT
    s = stats(client)
    assert s["lookups_of"]["absent"] > in_python, "an expired answer was given"
    assert s["lookup"]["expired"] >= 1


def test_the_table_holds_at_most_its_limit(gluster):
    client = gluster.gfapi(rules_brick(gluster, limit=3))
    for i in range(10):
        assert errno_of(client.stat, f"/gone-{i}") == errno.ENOENT
    s = stats(client)["lookup"]
    assert (s["entries"], s["evicted"]) == (3, 7)
    before = stats(client)["lookups_of"]
    assert errno_of(client.stat, "/gone-9") == errno.ENOENT  # newest: from the table
    assert errno_of(client.stat, "/gone-0") == errno.ENOENT  # oldest: evicted, to Python
    after = stats(client)["lookups_of"]
    assert after["gone-9"] == before["gone-9"]
    assert after["gone-0"] > before["gone-0"]


MAKERS = {
    "create": lambda c, name: c.write_file(name, b"x"),
    "mkdir": lambda c, name: c.mkdir(name),
    "mknod": lambda c, name: c.mknod(name, 0o10644),
    "symlink": lambda c, name: c.symlink("target", name),
    "link": lambda c, name: c.link("/source", name),
    "rename": lambda c, name: c.rename("/source", name),
}


@pytest.mark.parametrize("fop", MAKERS)
def test_a_name_made_through_the_translator_is_never_answered_missing(gluster, fop):
    brick = rules_brick(gluster)
    looker, maker = gluster.gfapi(brick), gluster.gfapi(brick)
    maker.write_file("/source", b"source")
    name = f"/made-by-{fop}"
    for _ in range(2):
        assert errno_of(looker.stat, name) == errno.ENOENT
    assert stats(looker)["lookup"]["hits"] >= 1, "the name was cached as missing"
    MAKERS[fop](maker, name)
    assert looker.lstat(name), f"{fop}: still answered missing"
    assert stats(looker)["lookup"]["invalidated"] >= 1


def test_a_name_the_translator_makes_itself_is_never_answered_missing(gluster):
    # Its mkdir also makes "<name>.meta", a wind of its own the request does
    # not name: the table forgets that name too.
    opts = {"module-name": "table_maker", "module-path": str(XLATORS)}
    brick = gluster.brick([("features/glupy", opts, "maker")])
    client = gluster.gfapi(brick)
    for _ in range(2):
        assert errno_of(client.lstat, "/d.meta") == errno.ENOENT
    client.mkdir("/d")
    assert (brick.directory / "d.meta").is_dir(), "the translator did not make its name"
    assert gluster.gfapi(brick).lstat("/d.meta"), "made by the translator, still answered missing"


@pytest.mark.parametrize("module", ["negative", "negative_async"])
def test_a_rename_onto_another_link_of_its_file_leaves_both_names(gluster, module):
    # rename(2) of a name onto another link of the same file succeeds and
    # changes nothing: the cache must not take the source for gone.
    opts = {"module-name": module, "module-path": str(EXAMPLES)}
    brick = gluster.brick([("features/glupy", opts, "nlc")])
    client = gluster.gfapi(brick)
    client.write_file("/a", b"x")
    client.link("/a", "/b")
    client.rename("/a", "/b")
    assert (brick.directory / "a").exists() and (brick.directory / "b").exists()
    assert gluster.gfapi(brick).lstat("/a"), "a is there, but answered missing"


@pytest.mark.parametrize("ttl", ["1e19", "1e30"])
def test_an_answer_kept_longer_than_a_clock_can_count_is_kept_for_good(gluster, ttl):
    # Seconds past what a time can hold (u64 seconds, or now + ttl): kept
    # as long as the table can keep anything, not a panic and EIO.
    brick = rules_brick(gluster, ttl=ttl)
    client = gluster.gfapi(brick)
    for _ in range(3):
        assert errno_of(client.stat, "/absent") == errno.ENOENT
    s = stats(client)
    assert s["lookup"]["entries"] == 1 and s["lookup"]["hits"] >= 2, s
    assert "panicked" not in brick.log_text()


def test_no_lookup_is_answered_missing_after_the_create_returned(gluster):
    # Eight threads look names up while another client creates them one by
    # one: a lookup that starts after a create returned must find the name.
    # With posix's ctime on (its default), GlusterFS itself fails a create
    # EEXIST now and then here, glupy or not: a lookup that comes between the
    # create's open and its gfid finds no ctime xattr yet, takes the file for
    # an old one without a gfid and gives it its own, and the create's
    # lsetxattr(XATTR_CREATE) of the gfid fails (posix_gfid_heal, 10.3 and
    # 11.1). With ctime off posix answers such a lookup ENOENT ("Fresh file").
    brick = rules_brick(gluster, posix_options={"ctime": "off"})
    looker, maker = gluster.gfapi(brick), gluster.gfapi(brick)
    names = [f"/n{i}" for i in range(40)]
    created_at, violations, stop = {}, [], threading.Event()

    def look(seed):
        i = seed
        while not stop.is_set():
            name = names[i % len(names)]
            i += 1
            started = time.monotonic()
            try:
                looker.stat(name)
            except FileNotFoundError:
                made = created_at.get(name)
                if made is not None and started > made:
                    violations.append((name, started - made))

    threads = [threading.Thread(target=look, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        for name in names:
            maker.write_file(name, b"now")
            created_at[name] = time.monotonic()
            time.sleep(0.02)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert violations == []
    s = stats(looker)["lookup"]
    assert s["hits"] > 0 and s["invalidated"] > 0, s


def test_the_statedump_shows_the_tables(gluster):
    brick = rules_brick(gluster)
    client = gluster.gfapi(brick)
    for _ in range(3):
        errno_of(client.stat, "/nothing")
    section = glusterlib.statedump_sections(brick.statedump())["xlator.features.glupy.rules.priv"]
    line = dict(pair.split("=") for pair in section["answers.lookup"].split())
    assert line["key"] == "entry" and int(line["hits"]) >= 2 and int(line["entries"]) == 1
    calls = dict(pair.split("=") for pair in section["fop.lookup"].split())
    assert calls["calls"] == calls["answered"]
    assert "answers.create" in section


def test_tables_are_made_while_the_translator_is_created(gluster):
    client = gluster.gfapi(rules_brick(gluster))
    assert errno_of(client.getxattr, "/", "user.rules.late-table") == errno.EPERM

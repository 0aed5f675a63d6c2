"""The WordPress plugin in a real WordPress: Debian's ``wordpress`` package (copied to a
temporary folder with its own wp-config.php), a private MariaDB server, PHP's built-in web
server, the plugin from integrations/wordpress/, and ``threadguard serve`` with the shipped
model. Comments are posted through wp-comments-post.php, as a browser's comment form does, and
must land approved, held, spam or trash as the hook says, with the hook's scores and reasons
as comment meta; with the hook down or silent, they are held and the form answers within the
plugin's timeout. The settings page is driven in headless Chromium (when installed)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser import ROOT, free_port, stop, wait_http

pytestmark = pytest.mark.wordpress

WORDPRESS = Path(os.environ.get("THREADGUARD_WORDPRESS", "/usr/share/wordpress"))
PLUGIN = ROOT / "integrations" / "wordpress" / "threadguard-moderation"
PLUGIN_FILE = "threadguard-moderation/threadguard-moderation.php"

BENIGN = "Thanks for the clear summary of the council meeting."
TOXIC = "You are a pathetic idiot and everyone here knows it"
# Spam the shipped model rejects (this test is about the plugin's handling of a reject). v0.6
# scores its earlier example, a watch advert, spam 0.40, under the 0.8 reject threshold: a
# regression MODEL_CARD.md names under Limitations.
SPAM = "Check out my channel!!! Subscribe and click here http://bit.ly/free-gift-cards now"


def _require() -> dict[str, str]:
    """The programs the test needs, or skip naming the missing ones."""
    found = {
        "php": shutil.which("php"),
        "mariadbd": shutil.which("mariadbd") or shutil.which("mysqld") or "/usr/sbin/mariadbd",
        "mariadb-install-db": shutil.which("mariadb-install-db"),
        "mariadb": shutil.which("mariadb") or shutil.which("mysql"),
    }
    missing = [name for name, path in found.items() if not path or not os.access(path, os.X_OK)]
    if not (WORDPRESS / "wp-settings.php").is_file():
        missing.append(f"wordpress (no {WORDPRESS}/wp-settings.php)")
    elif not any((WORDPRESS / "wp-content" / "themes").glob("*/style.css")):
        # Debian ships the themes apart; without one every page renders empty
        missing.append(f"a WordPress theme (none in {WORDPRESS}/wp-content/themes)")
    if (
        not missing
        and "mysqli"
        not in subprocess.run(
            [found["php"] or "php", "-m"], capture_output=True, text=True
        ).stdout.split()
    ):
        missing.append("php-mysql")
    if missing:
        pytest.skip(
            "a real WordPress needs " + ", ".join(missing) + ": apt-get install php-cli "
            "php-mysql mariadb-server wordpress wordpress-theme-twentytwentythree"
        )
    return {k: v for k, v in found.items() if v}


@dataclass
class Site:
    url: str
    root: Path
    php: str
    hook_url: str
    hook_token: str
    tmp: Path

    def php_eval(self, code: str, installing: bool = False) -> Any:
        """Run PHP inside WordPress (php-cli, wp-load.php) and decode the JSON it echoes."""
        script = self.tmp / "eval.php"
        script.write_text(
            "<?php\n$_SERVER['HTTP_HOST'] = '127.0.0.1';\n"
            + ("define( 'WP_INSTALLING', true );\n" if installing else "")
            + f"require {json.dumps(str(self.root / 'wp-load.php'))};\n{code}\n",
            encoding="utf-8",
        )
        out = subprocess.run(
            [self.php, str(script)], capture_output=True, text=True, timeout=60, check=False
        )
        assert out.returncode == 0, out.stdout + out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    def settings(self, **values: Any) -> None:
        current = self.php_eval("echo wp_json_encode( Threadguard_Moderation::get_settings() );")
        current.update(values)
        self.php_eval(
            f"update_option( 'threadguard_moderation_settings', json_decode( "
            f"{json.dumps(json.dumps(current))}, true ) ); echo '1';"
        )

    def post_comment(self, text: str, author: str = "Reader") -> tuple[httpx.Response, float]:
        """POST the comment form to wp-comments-post.php, as a browser does."""
        started = time.monotonic()
        response = httpx.post(
            self.url + "/wp-comments-post.php",
            data={
                "comment": text,
                "author": author,
                "email": f"{author.lower()}@example.org",
                "url": "",
                "comment_post_ID": "1",
                "comment_parent": "0",
            },
            timeout=30,
            follow_redirects=False,
        )
        return response, time.monotonic() - started

    def comment(self, text: str) -> dict[str, Any]:
        """The stored comment with this text: its status and the plugin's meta."""
        found = self.php_eval(
            "global $wpdb; $id = $wpdb->get_var( $wpdb->prepare( "
            '"SELECT comment_ID FROM {$wpdb->comments} WHERE comment_content = %s '
            f'ORDER BY comment_ID DESC LIMIT 1", {json.dumps(text)} ) ); '
            "$c = get_comment( $id ); echo wp_json_encode( $c ? array( "
            "'approved' => $c->comment_approved, 'meta' => array_map( 'maybe_unserialize', "
            "array_map( 'end', get_comment_meta( $id ) ) ) ) : null );"
        )
        assert found is not None, f"no comment {text!r} was stored"
        return dict(found)


def _mariadb(tmp: Path, tools: dict[str, str]) -> tuple[subprocess.Popen[str], Path]:
    data, sock = tmp / "mysql-data", tmp / "mysql.sock"
    subprocess.run(
        [
            tools["mariadb-install-db"],
            "--no-defaults",
            f"--datadir={data}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--user=" + ("root" if os.getuid() == 0 else os.environ.get("USER", "nobody")),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    server = subprocess.Popen(
        [
            tools["mariadbd"],
            "--no-defaults",
            f"--datadir={data}",
            f"--socket={sock}",
            "--skip-networking",
            f"--pid-file={tmp / 'mysql.pid'}",
            f"--log-error={tmp / 'mysql.err'}",
            *(["--user=root"] if os.getuid() == 0 else []),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while True:
        ok = subprocess.run(
            [tools["mariadb"], "--no-defaults", f"--socket={sock}", "-uroot", "-e", "SELECT 1"],
            capture_output=True,
        )
        if ok.returncode == 0:
            break
        if server.poll() is not None or time.monotonic() > deadline:
            log = (tmp / "mysql.err").read_text(errors="replace")[-2000:]
            stop(server)
            pytest.fail(f"MariaDB did not start:\n{log}")
        time.sleep(0.3)
    subprocess.run(
        [
            tools["mariadb"],
            "--no-defaults",
            f"--socket={sock}",
            "-uroot",
            "-e",
            "CREATE DATABASE wp",
        ],
        check=True,
    )
    return server, sock


WP_CONFIG = """<?php
define( 'DB_NAME', 'wp' );
define( 'DB_USER', 'root' );
define( 'DB_PASSWORD', '' );
define( 'DB_HOST', 'localhost:{sock}' );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );
{salts}
$table_prefix = 'wp_';
define( 'WP_HOME', '{url}' );
define( 'WP_SITEURL', '{url}' );
define( 'WP_DEBUG', false );
define( 'DISABLE_WP_CRON', true );
define( 'AUTOMATIC_UPDATER_DISABLED', true );
define( 'WP_AUTO_UPDATE_CORE', false );
define( 'WP_HTTP_BLOCK_EXTERNAL', true ); // nothing leaves the machine; 127.0.0.1 is this site
if ( ! defined( 'ABSPATH' ) ) {{
	define( 'ABSPATH', __DIR__ . '/' );
}}
require_once ABSPATH . 'wp-settings.php';
"""

# Test-only: WordPress refuses a second comment from one address within 15 s.
NO_FLOOD = """<?php
add_filter( 'wp_is_comment_flood', '__return_false', 100 );
"""

INSTALL = """
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';
wp_install( 'Riverside Courier', 'admin', 'admin@example.org', false, '', 'admin-password' );
update_option( 'comment_previously_approved', 0 );
update_option( 'comment_moderation', 0 );
update_option( 'require_name_email', 1 );
$activated = activate_plugin( '{plugin}' );
update_option( 'threadguard_moderation_settings', array(
	'url' => '{hook_url}', 'token' => '{token}', 'timeout' => 2, 'reject_as' => 'spam',
	'on_failure' => 'hold',
) );
echo wp_json_encode( array( 'activated' => ! is_wp_error( $activated ),
	'active' => get_option( 'active_plugins' ), 'post' => get_post( 1 )->post_title ) );
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tools = _require()
    tmp = tmp_path_factory.mktemp("wordpress")
    processes: list[subprocess.Popen[str]] = []
    try:
        db, sock = _mariadb(tmp, tools)
        processes.append(db)

        hook_port, token = free_port(), secrets.token_urlsafe(16)
        threadguard = Path(sys.executable).with_name("threadguard")
        hook = subprocess.Popen(
            [str(threadguard), "serve", "--port", str(hook_port)],
            cwd=ROOT,
            env={**os.environ, "THREADGUARD_TOKEN": token, "HF_HUB_OFFLINE": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        processes.append(hook)
        hook_url = f"http://127.0.0.1:{hook_port}"

        root = tmp / "wp"
        shutil.copytree(
            WORDPRESS,
            root,
            symlinks=False,
            ignore=shutil.ignore_patterns("languages", "wp-config.php", "akismet"),
        )
        shutil.copytree(PLUGIN, root / "wp-content" / "plugins" / "threadguard-moderation")
        (root / "wp-content" / "mu-plugins").mkdir(exist_ok=True)
        (root / "wp-content" / "mu-plugins" / "no-flood.php").write_text(NO_FLOOD)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        salts = "\n".join(
            f"define( '{name}', '{secrets.token_hex(24)}' );"
            for name in (
                "AUTH_KEY",
                "SECURE_AUTH_KEY",
                "LOGGED_IN_KEY",
                "NONCE_KEY",
                "AUTH_SALT",
                "SECURE_AUTH_SALT",
                "LOGGED_IN_SALT",
                "NONCE_SALT",
            )
        )
        (root / "wp-config.php").write_text(
            WP_CONFIG.format(sock=sock, url=url, salts=salts), encoding="utf-8"
        )
        php = tools["php"]
        s = Site(url=url, root=root, php=php, hook_url=hook_url, hook_token=token, tmp=tmp)
        wait_http(hook_url + "/readyz", timeout=240, process=hook)
        installed = s.php_eval(
            INSTALL.replace("{plugin}", PLUGIN_FILE)
            .replace("{hook_url}", hook_url)
            .replace("{token}", token),
            installing=True,
        )
        assert installed["activated"] and PLUGIN_FILE in installed["active"], installed

        server = subprocess.Popen(
            [php, "-S", f"127.0.0.1:{port}", "-t", str(root)],
            cwd=root,
            env={**os.environ, "PHP_CLI_SERVER_WORKERS": "2"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its workers are stopped with it, as a process group
        )
        processes.append(server)
        wait_http(url + "/wp-login.php", timeout=60, process=server)
        yield s
    finally:
        for process in reversed(processes):
            if process.poll() is None and process.pid == os.getpgid(process.pid):
                os.killpg(process.pid, signal.SIGTERM)  # PHP's server and its workers
            stop(process)


def test_comments_land_as_the_hook_decides(site: Site) -> None:
    site.settings(url=site.hook_url, token=site.hook_token, reject_as="spam", on_failure="hold")
    expected = {BENIGN: ("1", "approve"), TOXIC: ("0", "review"), SPAM: ("spam", "reject")}
    for i, (text, (approved, decision)) in enumerate(expected.items()):
        response, _ = site.post_comment(text, author=f"Reader{i}")
        assert response.status_code in (302, 303), response.text[:2000]
        comment = site.comment(text)
        assert comment["approved"] == approved, (text, comment)
        meta = comment["meta"]
        assert meta["threadguard_decision"] == decision, meta
        assert set(meta["threadguard_scores"]) >= {"toxicity", "insult", "spam"}, meta
        assert meta["threadguard_model_version"].startswith("default_model"), meta
        assert "threadguard_error" not in meta
    reasons = site.comment(TOXIC)["meta"]["threadguard_reasons"]
    assert "insult" in [r["label"] for r in reasons], reasons
    assert [r["label"] for r in site.comment(SPAM)["meta"]["threadguard_reasons"]] == ["spam"]

    # The published comment is on the post's page; the held one is not.
    page = httpx.get(site.url + "/?p=1", timeout=30).text
    assert BENIGN in page
    assert TOXIC not in page


def test_rejected_comments_go_to_the_trash_when_configured(site: Site) -> None:
    site.settings(url=site.hook_url, token=site.hook_token, reject_as="trash")
    text = SPAM.replace("BUY", "Buy")
    response, _ = site.post_comment(text, author="Seller")
    assert response.status_code in (302, 303), response.text[:2000]
    assert site.comment(text)["approved"] == "trash"


def test_bad_token_holds_the_comment(site: Site) -> None:
    site.settings(url=site.hook_url, token="wrong-token", reject_as="spam")
    text = "A fair point about the fares, but what about the night buses?"
    response, _ = site.post_comment(text, author="Nina")
    assert response.status_code in (302, 303), response.text[:2000]
    comment = site.comment(text)
    assert comment["approved"] == "0", comment
    assert "401" in comment["meta"]["threadguard_error"], comment


@pytest.mark.parametrize("failure", ["down", "slow"])
def test_hook_unavailable_holds_the_comment_within_the_timeout(site: Site, failure: str) -> None:
    import socket

    timeout = 1.0
    listener = None
    if failure == "down":
        url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    else:
        listener = socket.socket()  # accepts connections (the kernel does) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        site.settings(url=url, token=site.hook_token, timeout=timeout, on_failure="hold")
        text = f"Will the number 4 run on Sundays too? ({failure})"
        response, elapsed = site.post_comment(text, author="Sam")
        assert response.status_code in (302, 303), response.text[:2000]
        comment = site.comment(text)
        assert comment["approved"] == "0", comment
        assert comment["meta"]["threadguard_error"].startswith("no answer"), comment
        # The hook's wait is bounded by the timeout; the rest is WordPress itself on PHP's
        # single-process server (about a second here).
        assert elapsed < timeout + 4, f"the form took {elapsed:.1f} s"
        if failure == "slow":
            assert elapsed >= timeout, f"answered in {elapsed:.2f} s: the plugin did not wait"
        assert httpx.get(site.url + "/?p=1", timeout=30).status_code == 200
    finally:
        if listener is not None:
            listener.close()
        site.settings(url=site.hook_url, token=site.hook_token, timeout=2)


def test_a_featured_comment_is_kept_as_feature_and_classed(site: Site) -> None:
    """The hook itself (the fake model with the span and constructiveness heads, the feature
    rule) behind the plugin: a featured comment is published with decision ``feature``, the
    ``threadguard_featured`` meta and the ``threadguard-featured`` class on the post's page;
    a held one keeps the words the model flagged with its reasons."""
    from classifier.moderation import create_app
    from tests.test_service import (
        CONSTRUCTIVE,
        FEATURE_POLICY,
        HeadsPredictor,
        running,
    )
    from tests.test_service import (
        settings as hook_settings,
    )

    token = site.hook_token
    app = create_app(hook_settings(token=token), predictor=HeadsPredictor(), policy=FEATURE_POLICY)
    with running(app) as url:
        try:
            site.settings(url=url, token=token, timeout=2, on_failure="hold")
            for author, text in (("Ada", CONSTRUCTIVE), ("Troll", "Nobody asked you, idiot.")):
                response, _ = site.post_comment(text, author=author)
                assert response.status_code in (302, 303), response.text[:2000]
        finally:
            site.settings(url=site.hook_url, token=site.hook_token, timeout=2)
    featured = site.comment(CONSTRUCTIVE)
    assert featured["approved"] == "1", featured
    meta = featured["meta"]
    assert meta["threadguard_decision"] == "feature" and meta["threadguard_featured"] == "1"
    assert meta["threadguard_constructive"]["constructive"] == 0.9, meta
    assert meta["threadguard_reasons"][0]["action"] == "feature", meta
    held = site.comment("Nobody asked you, idiot.")
    assert held["approved"] == "0" and held["meta"]["threadguard_decision"] == "review", held
    insult = [r for r in held["meta"]["threadguard_reasons"] if r["label"] == "insult"]
    assert insult and insult[0]["words"] == ["idiot"], held
    assert "threadguard_featured" not in held["meta"]

    page = httpx.get(site.url + "/?p=1", timeout=30).text
    classes = page.split("2019 counts", 1)[0].rsplit("<li", 1)[1]
    assert "threadguard-featured" in classes, classes[:500]
    assert page.count("threadguard-featured") == 1


def test_settings_page_and_comment_form_in_a_browser(site: Site, tmp_path: Path) -> None:
    """Chromium: a reader posts through the theme's comment form (a benign comment appears, a
    toxic one does not); the admin saves the plugin's settings page and sees the hook's
    decision and reasons in the comment list. Screenshots in the test's output folder."""
    from tests.browser import chromium, chromium_paths, click_and_load

    chromium_paths()  # skips with the reason when Chromium is not installed
    from selenium.webdriver.common.by import By

    site.settings(url=site.hook_url, token=site.hook_token, timeout=2, reject_as="spam")
    benign = "Thanks for the clear summary; the map of the new routes helps."
    with chromium() as browser:

        def submit(button_id: str) -> None:
            click_and_load(browser, browser.find_element(By.ID, button_id))

        def comment_via_form(author: str, text: str) -> None:
            browser.get(site.url + "/?p=1")
            browser.find_element(By.ID, "author").send_keys(author)
            browser.find_element(By.ID, "email").send_keys(f"{author.lower()}@example.org")
            browser.find_element(By.ID, "comment").send_keys(text)
            submit("submit")

        comment_via_form("Lena", benign)
        browser.save_screenshot(str(tmp_path / "1-benign-comment.png"))
        assert benign in browser.page_source
        assert site.comment(benign)["approved"] == "1"

        toxic = TOXIC + ", Lena"
        comment_via_form("Troll", toxic)
        browser.save_screenshot(str(tmp_path / "2-toxic-comment.png"))
        assert site.comment(toxic)["approved"] == "0"
        browser.delete_all_cookies()  # WordPress shows a held comment to its own author
        browser.get(site.url + "/?p=1")
        assert toxic not in browser.page_source and benign in browser.page_source

        browser.get(site.url + "/wp-login.php")
        browser.find_element(By.ID, "user_login").send_keys("admin")
        browser.find_element(By.ID, "user_pass").send_keys("admin-password")
        submit("wp-submit")
        browser.get(site.url + "/wp-admin/options-general.php?page=threadguard-moderation")
        for field, value in (
            ("threadguard-url", site.hook_url + "/"),
            ("threadguard-timeout", "1.5"),
        ):
            element = browser.find_element(By.ID, field)
            element.clear()
            element.send_keys(value)
        browser.find_element(By.CSS_SELECTOR, "input[name$='[reject_as]'][value='hook']").click()
        browser.save_screenshot(str(tmp_path / "3-settings-page.png"))
        submit("submit")
        assert "Settings saved" in browser.page_source
        saved = site.php_eval("echo wp_json_encode( Threadguard_Moderation::get_settings() );")
        assert saved["url"] == site.hook_url + "/" and saved["timeout"] == 1.5, saved
        assert saved["reject_as"] == "hook" and saved["token"] == site.hook_token, saved

        browser.get(site.url + "/wp-admin/edit-comments.php?comment_status=moderated")
        browser.save_screenshot(str(tmp_path / "4-comment-queue.png"))
        row = browser.find_element(
            By.XPATH, "//tr[contains(@id, 'comment-')][.//*[contains(text(), 'Troll')]]"
        )
        column = row.find_element(By.CSS_SELECTOR, "td.column-threadguard")
        assert "review" in column.text and "insult" in column.text, column.text

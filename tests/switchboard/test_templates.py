"""The template system: shipped templates, locales, layouts, strictness, sandbox, reload."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest

from switchboard.errors import TemplateError
from switchboard.templating import Channel, FieldSpec, FieldType, TemplateStore
from switchboard.templating.rendering import KEPT_PLANS, PLANS

SHIPPED = Path(__file__).resolve().parents[2] / "templates"
NAME_ONLY = 'description = "Test template."\n[fields]\nname = "str"\n[sample]\nname = "Ada"\n'
EXPECTED_LOCALES = {
    ("email", "welcome"): ("en", "fr"),
    ("email", "password_reset"): ("en", "fr"),
    ("email", "order_shipped"): ("en",),
    ("email", "new_comments"): ("en",),
    ("sms", "password_reset"): ("en", "fr"),
    ("sms", "order_shipped"): ("en",),
    ("push", "welcome"): ("en", "fr"),
    ("push", "order_shipped"): ("en",),
}


def write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def sms(name: str, body: str, manifest: str = NAME_ONLY) -> dict[str, str]:
    return {f"sms/{name}/template.toml": manifest, f"sms/{name}/body.txt": body}


def problem_lines(store: TemplateStore) -> list[str]:
    return [str(problem) for problem in store.check()]


@pytest.fixture(scope="module")
def shipped() -> TemplateStore:
    return TemplateStore(SHIPPED, refresh_interval=None)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty templates folder of our own."""
    folder = tmp_path / "templates"
    folder.mkdir()
    return folder


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped templates."""
    return Path(shutil.copytree(SHIPPED, tmp_path / "templates"))


# --- the shipped templates -------------------------------------------------------------


def test_shipped_templates_have_no_problems(shipped: TemplateStore) -> None:
    assert problem_lines(shipped) == []


def test_shipped_catalogue_lists_every_template_and_locale(shipped: TemplateStore) -> None:
    found = {(info.channel.value, info.name): info.locales for info in shipped.templates()}
    assert found == EXPECTED_LOCALES


@pytest.mark.parametrize(
    ("channel", "name", "locale"), [(*key, tag) for key, tags in EXPECTED_LOCALES.items() for tag in tags]
)
def test_every_shipped_template_renders_its_sample_in_every_locale(
    shipped: TemplateStore, channel: str, name: str, locale: str
) -> None:
    message = shipped.render_sample(channel, name, locale)
    assert message.locale == locale
    expected_parts = {"email": {"subject", "text", "html"}, "sms": {"body"}, "push": {"title", "body"}}[channel]
    assert set(message.parts()) == expected_parts
    assert all(text.strip() for text in message.parts().values())
    assert "{{" not in "".join(message.parts().values())


def test_french_welcome_is_french_down_to_the_layout_and_footer(shipped: TemplateStore) -> None:
    info = shipped.get("email", "welcome")
    french = shipped.render("email", "welcome", info.sample, locale="fr")
    english = shipped.render("email", "welcome", info.sample)
    assert french.subject == "Bienvenue chez Acme, Ada !"
    assert english.subject == "Welcome to Acme, Ada!"
    assert french.html is not None and english.html is not None and french.text is not None
    assert '<html lang="fr">' in french.html and '<html lang="en">' in english.html
    assert "Vous recevez cet e-mail" in french.html and "Vous recevez cet e-mail" in french.text
    assert "You are receiving this email" in english.html


def test_shipped_html_uses_the_shared_layout_and_button_partial(shipped: TemplateStore) -> None:
    message = shipped.render_sample("email", "password_reset")
    assert message.html is not None
    assert message.html.startswith("<!DOCTYPE html>")
    assert "<title>Reset your password</title>" in message.html
    assert 'href="https://app.example.com/reset-password?token=3f9c1e7a52b04d6e"' in message.html
    assert "Choose a new password</a>" in message.html


def test_optional_fields_can_be_left_out_of_shipped_templates(shipped: TemplateStore) -> None:
    data = dict(shipped.get("email", "password_reset").sample)
    del data["request_ip"], data["request_device"]
    message = shipped.render("email", "password_reset", data)
    assert message.text is not None and "The request came from" not in message.text


# --- locales ---------------------------------------------------------------------------


@pytest.fixture
def greeting(root: Path) -> TemplateStore:
    write(
        root,
        {
            "push/greet/template.toml": NAME_ONLY,
            "push/greet/title.txt": "Hello {{ name }}",
            "push/greet/title.fr.txt": "Bonjour {{ name }}",
            "push/greet/body.txt": "default body",
            "push/greet/body.fr.txt": "corps fr",
            "push/greet/body.fr_CA.txt": "corps fr_CA",
        },
    )
    return TemplateStore(root, refresh_interval=None)


@pytest.mark.parametrize(
    ("asked", "used", "title", "body"),
    [
        ("fr_CA", "fr_CA", "Bonjour Ada", "corps fr_CA"),
        ("fr-ca", "fr_CA", "Bonjour Ada", "corps fr_CA"),
        ("fr", "fr", "Bonjour Ada", "corps fr"),
        ("fr_BE", "fr", "Bonjour Ada", "corps fr"),
        ("de", "en", "Hello Ada", "default body"),
        (None, "en", "Hello Ada", "default body"),
    ],
)
def test_locale_falls_back_region_then_language_then_default(
    greeting: TemplateStore, asked: str | None, used: str, title: str, body: str
) -> None:
    message = greeting.render("push", "greet", {"name": "Ada"}, locale=asked)
    assert (message.locale, message.title, message.body) == (used, title, body)


def test_a_nonsense_locale_is_a_template_error(greeting: TemplateStore) -> None:
    with pytest.raises(TemplateError, match=r"invalid locale '\.\./etc'"):
        greeting.render("push", "greet", {"name": "Ada"}, locale="../etc")


def test_shipped_french_serves_a_canadian_reader(shipped: TemplateStore) -> None:
    message = shipped.render_sample("sms", "password_reset", "fr_CA")
    assert message.locale == "fr"
    assert message.body is not None and message.body.startswith("Acme : votre code")


def test_layouts_and_partials_follow_the_locale_too(root: Path) -> None:
    write(
        root,
        {
            "layouts/frame.html": "<main>{% block content %}{% endblock %}</main>{% include 'partials/sign.html' %}",
            "layouts/frame.fr.html": "<principal>{% block content %}{% endblock %}</principal>",
            "partials/sign.html": "<i>{{ name }}</i>",
            "email/note/template.toml": NAME_ONLY,
            "email/note/subject.txt": "Note",
            "email/note/subject.fr.txt": "Mot",
            "email/note/body.html": '{% extends "layouts/frame.html" %}{% block content %}Hi{% endblock %}',
            "email/note/body.fr.html": '{% extends "layouts/frame.html" %}{% block content %}Salut{% endblock %}',
        },
    )
    store = TemplateStore(root, refresh_interval=None)
    assert store.render("email", "note", {"name": "Ada"}).html == "<main>Hi</main><i>Ada</i>"
    assert store.render("email", "note", {"name": "Ada"}, "fr").html == "<principal>Salut</principal>"


def test_a_locale_that_falls_back_to_another_language_is_reported(root: Path) -> None:
    write(root, {**sms("code", "Your code"), "email/hello/template.toml": NAME_ONLY, "email/hello/subject.txt": "Hi"})
    write(root, {"email/hello/body.txt": "Hello", "email/hello/body.fr.txt": "Bonjour"})
    assert problem_lines(TemplateStore(root)) == [
        "email/hello [fr] subject.txt: no fr translation, fr would get the en text"
    ]


# --- strictness: undefined variables and declared data --------------------------------


def test_a_missing_variable_is_an_error_naming_it_not_an_empty_string(root: Path) -> None:
    write(root, sms("typo", "Hi {{ nmae }}"))
    store = TemplateStore(root, refresh_interval=None)
    with pytest.raises(TemplateError, match=r"sms/typo \[en\] body.txt: 'nmae' is undefined \(line 1\)"):
        store.render("sms", "typo", {"name": "Ada"})
    assert "sms/typo body.txt: uses 'nmae', which template.toml does not declare" in problem_lines(store)


def test_a_missing_key_of_a_dict_field_is_an_error(root: Path) -> None:
    manifest = 'description = "x"\n[fields]\nuser = "dict"\n[sample]\nuser = { name = "Ada" }\n'
    write(root, sms("dict", "Hi\n{{ user.nmae }}", manifest))
    store = TemplateStore(root, refresh_interval=None)
    assert problem_lines(store) == ["sms/dict [en] body.txt: 'dict object' has no attribute 'nmae' (line 2)"]
    assert store.render("sms", "dict", {"user": {"nmae": "x"}}).body == "Hi\nx"


def test_an_error_inside_a_partial_names_the_partial_and_line(root: Path) -> None:
    write(root, {**sms("inc", "{% include 'partials/sig.txt' %}"), "partials/sig.txt": "--\n{{ signature }}"})
    with pytest.raises(TemplateError, match=r"'signature' is undefined \(in partials/sig.txt line 2\)"):
        TemplateStore(root).render("sms", "inc", {"name": "Ada"})


VALID_AND_INVALID = [
    (FieldType.STR, "Ada", 3),
    (FieldType.INT, 3, "3"),
    (FieldType.INT, 3, True),
    (FieldType.FLOAT, 2.5, "2.5"),
    (FieldType.FLOAT, 2, False),
    (FieldType.BOOL, False, 0),
    (FieldType.URL, "https://example.com/x?y=1", "javascript:alert(1)"),
    (FieldType.URL, "http://example.com", "example.com/path"),
    (FieldType.EMAIL, "ada@example.com", "ada.example.com"),
    (FieldType.EMAIL, "ada+tag@mail.example.org", "ada@localhost"),
    (FieldType.LIST, ["a", "b"], "a,b"),
    (FieldType.DICT, {"a": 1}, ["a", 1]),
]


@pytest.mark.parametrize(("kind", "good", "bad"), VALID_AND_INVALID)
def test_each_field_type_accepts_its_values_and_rejects_others(kind: FieldType, good: object, bad: object) -> None:
    spec = FieldSpec("value", kind)
    assert spec.problem(good) is None
    problem = spec.problem(bad)
    assert problem is not None and problem.startswith("'value' must be ")


@pytest.fixture
def typed(root: Path) -> TemplateStore:
    manifest = (
        'description = "x"\n[fields]\nname = "str"\ncount = "int"\nnote = "str?"\n'
        '[sample]\nname = "Ada"\ncount = 2\nnote = "hi"\n'
    )
    write(root, sms("typed", "{{ name }} {{ count }}{% if note %} {{ note }}{% endif %}", manifest))
    return TemplateStore(root, refresh_interval=None)


def test_data_is_validated_against_declared_fields_before_rendering(typed: TemplateStore) -> None:
    with pytest.raises(TemplateError) as caught:
        typed.render("sms", "typed", {"count": "2"})
    assert str(caught.value) == (
        "sms/typed: data does not fit template.toml: 'name' is required; 'count' must be int, got str '2'"
    )


def test_optional_fields_may_be_absent_or_none(typed: TemplateStore) -> None:
    assert typed.render("sms", "typed", {"name": "Ada", "count": 2}).body == "Ada 2"
    assert typed.render("sms", "typed", {"name": "Ada", "count": 2, "note": None}).body == "Ada 2"
    assert typed.render("sms", "typed", {"name": "Ada", "count": 2, "note": "hey"}).body == "Ada 2 hey"


def test_undeclared_data_is_allowed_but_never_reaches_the_template(root: Path) -> None:
    write(root, sms("extra", "{{ name }}{% if secret is defined %} {{ secret }}{% endif %}"))
    store = TemplateStore(root, refresh_interval=None)
    assert store.render("sms", "extra", {"name": "Ada", "secret": "s3cr3t"}).body == "Ada"


def test_data_must_be_an_object(typed: TemplateStore) -> None:
    with pytest.raises(TemplateError, match="data must be an object, got list"):
        typed.render("sms", "typed", ["Ada"])  # type: ignore[arg-type]


# --- escaping and the sandbox ----------------------------------------------------------


def test_html_parts_are_escaped_and_text_parts_are_not(root: Path) -> None:
    write(
        root,
        {
            "email/x/template.toml": NAME_ONLY,
            "email/x/subject.txt": "About {{ name }}",
            "email/x/body.txt": "Hi {{ name }}",
            "email/x/body.html": "<p>Hi {{ name }}</p>{% include 'partials/again.html' %}",
            "partials/again.html": "<b>{{ name }}</b>",
        },
    )
    message = TemplateStore(root).render("email", "x", {"name": "<script>alert(1)</script>"})
    assert message.html == "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt;</p><b>&lt;script&gt;alert(1)&lt;/script&gt;</b>"
    assert message.text == "Hi <script>alert(1)</script>"
    assert message.subject == "About <script>alert(1)</script>"


def test_subjects_are_one_line_even_when_data_has_line_breaks(shipped: TemplateStore) -> None:
    data = {**shipped.get("email", "welcome").sample, "first_name": "Ada\r\nBcc: victim@example.com"}
    assert shipped.render("email", "welcome", data).subject == "Welcome to Acme, Ada Bcc: victim@example.com!"


ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__.os }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ name | attr('__class__') }}",
    "{{ '{0.__class__.__mro__}'.format(name) }}",
    "{{ self._TemplateReference__context }}",
    "{{ range.__self__ }}",
    "{% set xs = [1] %}{{ xs.append(2) }}",
]


@pytest.mark.parametrize("body", ESCAPES)
def test_sandbox_escapes_fail_with_a_clear_template_error(root: Path, body: str) -> None:
    write(root, sms("evil", body))
    store = TemplateStore(root, refresh_interval=None)
    with pytest.raises(TemplateError) as caught:
        store.render("sms", "evil", {"name": "Ada"})
    message = str(caught.value)
    assert message.startswith("sms/evil [en] body.txt: sandbox: ")
    assert "unsafe" in message or "not safely callable" in message
    assert any(line.startswith("sms/evil [en] body.txt: sandbox: ") for line in problem_lines(store))


# --- broken templates are reported at load, one line each ------------------------------


def test_a_syntax_error_is_reported_at_load_and_the_template_stays_listed(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(root, {**sms("ok", "fine"), **sms("broken", "Hi\n{% if name %}{{ name }")})
    with caplog.at_level(logging.WARNING):
        store = TemplateStore(root, refresh_interval=None)
    expected = "sms/broken body.txt: syntax error: unexpected '}' (line 2)"
    assert [str(problem) for problem in store.problems] == [expected]
    assert expected in caplog.text
    assert [(info.name, info.ok) for info in store.templates()] == [("broken", False), ("ok", True)]
    with pytest.raises(TemplateError, match=r"syntax error: unexpected '}' \(line 2\)"):
        store.render("sms", "broken", {"name": "Ada"})


@pytest.mark.parametrize(
    ("files", "line"),
    [
        ({"sms/a/body.txt": "x"}, "sms/a template.toml: missing (it declares description, fields, sample)"),
        ({"sms/a/template.toml": "description = ", "sms/a/body.txt": "x"}, "sms/a template.toml: invalid TOML"),
        (
            {"sms/a/template.toml": 'descripton = "x"', "sms/a/body.txt": "x"},
            "sms/a template.toml: unknown key(s) descripton",
        ),
        (
            {"sms/a/template.toml": 'description = "x"\n[fields]\nn = "number"', "sms/a/body.txt": "x"},
            "sms/a template.toml: field 'n': type 'number' is not one of str, int",
        ),
        (
            {"sms/a/template.toml": 'description = "x"\n[fields]\nn = "int"\n[sample]\nn = "1"', "sms/a/body.txt": "x"},
            "sms/a template.toml: [sample] 'n' must be int, got str '1'",
        ),
        (
            {"sms/a/template.toml": 'description = "x"\n[sample]\nn = 1', "sms/a/body.txt": "x"},
            "sms/a template.toml: [sample] 'n' is not a declared field",
        ),
        ({"push/a/template.toml": NAME_ONLY, "push/a/body.txt": "x"}, "push/a title.txt: missing (required)"),
        (
            {"email/a/template.toml": NAME_ONLY, "email/a/subject.txt": "x"},
            "email/a: needs at least one of body.txt or body.html",
        ),
        ({**sms("a", "x"), "sms/a/bodyy.txt": "x"}, "sms/a bodyy.txt: unexpected file (a sms template has body.txt)"),
        ({**sms("a", "x"), "sms/a/fr/body.txt": "x"}, "sms/a/fr: unexpected folder: locale variants are files"),
        ({**sms("a", "x"), "sms/a/body.en.txt": "x"}, "sms/a body.en.txt: same locale as the default file body.txt"),
        ({**sms("a", "x"), "sms/a/title.fr.txt": "x"}, "sms/a title.fr.txt: unexpected file"),
        ({**sms("a", "x"), "emails/b/body.txt": "x"}, "emails: unknown folder (expected one of email, layouts"),
        ({**sms("a", "x"), "partials/p.txt": "{% for %}"}, "partials/p.txt: syntax error: "),
        (
            {**sms("a", "{% include 'partials/no.txt' %}")},
            "sms/a [en] body.txt: template 'partials/no.txt' not found (line 1)",
        ),
        ({**sms("a", "x"), "sms/b/body.txt": "x"}, "sms/b template.toml: missing"),
        (
            {"sms/Bad Name/template.toml": NAME_ONLY, "sms/Bad Name/body.txt": "x"},
            "sms/Bad Name: name must be lower-case",
        ),
    ],
)
def test_malformed_templates_are_reported_with_one_clear_line(root: Path, files: dict[str, str], line: str) -> None:
    write(root, files)
    lines = problem_lines(TemplateStore(root))
    assert any(found.startswith(line) for found in lines), lines
    assert all("\n" not in found for found in lines)


def test_a_file_that_is_not_utf8_is_reported(root: Path) -> None:
    write(root, sms("a", "x"))
    (root / "sms/a/body.txt").write_bytes(b"caf\xe9")
    assert "sms/a body.txt: cannot be read as UTF-8 text" in problem_lines(TemplateStore(root))


def test_a_broken_template_toml_stops_every_render_with_its_reason(root: Path) -> None:
    write(root, {"sms/a/template.toml": "description = ", "sms/a/body.txt": "x"})
    store = TemplateStore(root)
    assert [(info.key, info.ok) for info in store.templates()] == [("sms/a", False)]
    assert len(store.problems) == 1  # no follow-on noise from checking against nothing
    with pytest.raises(TemplateError, match=r"^sms/a template.toml: invalid TOML"):
        store.render("sms", "a", {})


def test_a_template_broken_only_without_optional_fields_is_reported(root: Path) -> None:
    manifest = 'description = "x"\n[fields]\ncoupon = "dict?"\n[sample]\ncoupon = { code = "SAVE10" }\n'
    write(root, sms("promo", "Use {{ coupon.code }}", manifest))
    assert problem_lines(TemplateStore(root)) == [
        "sms/promo [en] body.txt: 'None' has no attribute 'code' (line 1) (with optional fields left out)"
    ]


def test_a_broken_layout_is_reported_for_itself_and_for_each_template_using_it(copy: Path) -> None:
    (copy / "layouts/email.html").write_text("<html>{% block content %}</html>", encoding="utf-8")
    lines = problem_lines(TemplateStore(copy))
    assert any(line.startswith("layouts/email.html: syntax error: ") for line in lines)
    for name in ("welcome", "password_reset", "order_shipped"):
        assert any(line.startswith(f"email/{name} [en] body.html: syntax error") for line in lines), lines


def test_a_missing_template_suggests_close_names(shipped: TemplateStore) -> None:
    with pytest.raises(TemplateError, match="no template email/welcom; did you mean email/welcome"):
        shipped.render("email", "welcom", {})
    with pytest.raises(TemplateError, match="unknown channel 'fax'"):
        shipped.get("fax", "welcome")


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="does not exist"):
        TemplateStore(tmp_path / "nope")


# --- hot reload ------------------------------------------------------------------------


def test_a_new_template_is_picked_up_without_rebuilding_the_store(root: Path) -> None:
    write(root, sms("a", "A"))
    store = TemplateStore(root, refresh_interval=None)
    write(root, sms("b", "B {{ name }}"))
    assert store.refresh() is True
    assert store.render("sms", "b", {"name": "Ada"}).body == "B Ada"
    assert store.refresh() is False


def test_an_edit_of_the_same_size_right_after_loading_is_seen(root: Path) -> None:
    write(root, sms("a", "Hello {{ name }}"))
    store = TemplateStore(root, refresh_interval=None)
    body = root / "sms/a/body.txt"
    before = body.stat()
    body.write_text("Howdy {{ name }}", encoding="utf-8")
    os.utime(body, ns=(before.st_atime_ns, before.st_mtime_ns))  # same size, same tick: stat alone cannot tell
    assert store.refresh() is True
    assert store.render("sms", "a", {"name": "Ada"}).body == "Howdy Ada"


def test_a_removed_template_is_gone_after_refresh(root: Path) -> None:
    write(root, {**sms("a", "A"), **sms("b", "B")})
    store = TemplateStore(root, refresh_interval=None)
    shutil.rmtree(root / "sms/b")
    store.refresh()
    assert [info.name for info in store.templates()] == ["a"]
    with pytest.raises(TemplateError, match="no template sms/b"):
        store.render("sms", "b", {"name": "Ada"})


def test_editing_a_layout_changes_every_email_that_extends_it(copy: Path) -> None:
    store = TemplateStore(copy, refresh_interval=None)
    layout = copy / "layouts/email.html"
    layout.write_text(layout.read_text(encoding="utf-8").replace("<!DOCTYPE html>", "<!DOCTYPE html><!-- v2 -->"))
    store.refresh()
    for name in ("welcome", "password_reset", "order_shipped"):
        html = store.render_sample("email", name).html
        assert html is not None and html.startswith("<!DOCTYPE html><!-- v2 -->")


def test_a_layout_edit_that_breaks_emails_is_reported_for_each_at_reload(copy: Path) -> None:
    store = TemplateStore(copy, refresh_interval=None)
    assert store.problems == []
    layout = copy / "layouts/email.html"
    layout.write_text("{{ brand }}\n" + layout.read_text(encoding="utf-8"), encoding="utf-8")
    store.refresh()
    broken = {(problem.where, problem.locale) for problem in store.problems}
    assert broken == {
        ("email/welcome", "en"),
        ("email/welcome", "fr"),
        ("email/password_reset", "en"),
        ("email/password_reset", "fr"),
        ("email/order_shipped", "en"),
        ("email/new_comments", "en"),
    }
    assert "email/welcome [fr] body.fr.html: 'brand' is undefined (in layouts/email.html line 1)" in problem_lines(
        store
    )


def test_an_edit_that_breaks_a_template_is_reported_at_reload(copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = TemplateStore(copy, refresh_interval=None)
    (copy / "sms/order_shipped/body.txt").write_text("Order {{ order.number }} shipped", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        store.refresh()
    expected = "sms/order_shipped body.txt: uses 'order', which template.toml does not declare"
    assert expected in [str(problem) for problem in store.problems]
    assert expected in caplog.text
    assert store.render_sample("push", "order_shipped").body  # the others keep working


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_reads_recheck_the_folder_at_most_every_refresh_interval(root: Path) -> None:
    write(root, sms("a", "one"))
    clock = FakeClock()
    store = TemplateStore(root, refresh_interval=5.0, clock=clock)
    (root / "sms/a/body.txt").write_text("two", encoding="utf-8")
    clock.now += 4.9
    assert store.render("sms", "a", {"name": "Ada"}).body == "one"
    clock.now += 0.1
    assert store.render("sms", "a", {"name": "Ada"}).body == "two"


# --- listing and inspection (CLI and dashboard) ----------------------------------------


def test_find_by_name_across_channels_or_in_one(shipped: TemplateStore) -> None:
    assert [info.key for info in shipped.find("welcome")] == ["email/welcome", "push/welcome"]
    assert [info.key for info in shipped.find("welcome", channel="push")] == ["push/welcome"]
    assert [info.key for info in shipped.find("email/welcome")] == ["email/welcome"]
    with pytest.raises(TemplateError, match="no template sms/welcome"):
        shipped.find("welcome", channel=Channel.SMS)


def test_info_and_messages_are_json_ready_for_the_cli_and_dashboard(shipped: TemplateStore) -> None:
    info = shipped.get("email", "welcome")
    listed = json.loads(json.dumps(info.to_dict()))
    assert listed["fields"] == {"first_name": "str", "login_url": "url", "help_url": "url", "trial_days": "int?"}
    assert listed["locales"] == ["en", "fr"]
    assert listed["sample"]["first_name"] == "Ada"
    assert "email/welcome/body.fr.html" in listed["files"]
    rendered = json.loads(json.dumps(shipped.render_sample("push", "welcome", "fr").to_dict()))
    assert rendered == {
        "channel": "push",
        "name": "welcome",
        "locale": "fr",
        "title": "Bienvenue chez Acme, Ada !",
        "body": "Votre compte est prêt. Touchez pour terminer votre profil.",
    }


def test_a_locale_file_added_later_is_used_after_the_reload(root: Path, greeting: TemplateStore) -> None:
    assert greeting.render("push", "greet", {"name": "Ada"}, locale="de").title == "Hello Ada"
    write(root, {"push/greet/title.de.txt": "Hallo {{ name }}"})
    greeting.refresh()
    message = greeting.render("push", "greet", {"name": "Ada"}, locale="de")
    assert (message.locale, message.title) == ("de", "Hallo Ada")


def test_a_flood_of_locales_is_answered_but_not_all_kept(greeting: TemplateStore) -> None:
    letters = "abcdefghijklmnopqrstuvwxyz"
    tags = [f"{a}{b}_{r}" for a in letters for b in letters for r in ("AA", "BB", "CC", "DD")][: KEPT_PLANS + 500]
    for tag in tags:
        greeting.render("push", "greet", {"name": "Ada"}, locale=tag)
    assert greeting.render("push", "greet", {"name": "Ada"}, locale="fr_ZZ").body == "corps fr"
    assert max(len(plans) for plans in PLANS.values()) == KEPT_PLANS

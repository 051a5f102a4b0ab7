import pytest

from vae_lesson.infra.settings import fast_mode, output_dir, output_root, scaled


@pytest.mark.parametrize("value,expected", [("1", True), ("true", True), ("YES", True), ("0", False), ("", False)])
def test_fast_mode_follows_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("VAE_LESSON_FAST", value)
    assert fast_mode() is expected
    assert scaled(30, fast=1) == (1 if expected else 30)


def test_output_dir_is_created_under_the_configured_root(monkeypatch, tmp_path):
    monkeypatch.setenv("VAE_LESSON_OUTPUT_DIR", str(tmp_path / "out"))
    folder = output_dir("gifs")
    assert folder == tmp_path / "out" / "gifs" and folder.is_dir()


def test_output_dir_defaults_to_generated_in_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("VAE_LESSON_OUTPUT_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert output_dir().resolve() == (tmp_path / "generated").resolve()


def test_output_root_reads_a_relative_folder_from_the_working_directory_and_creates_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("VAE_LESSON_OUTPUT_DIR", "out")
    assert output_root(tmp_path / "notebooks") == tmp_path / "notebooks" / "out"
    monkeypatch.setenv("VAE_LESSON_OUTPUT_DIR", str(tmp_path / "elsewhere"))
    assert output_root(tmp_path / "notebooks") == tmp_path / "elsewhere"
    monkeypatch.delenv("VAE_LESSON_OUTPUT_DIR")
    assert output_root(tmp_path) == tmp_path / "generated"
    assert not any(tmp_path.iterdir())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VAE_LESSON_OUTPUT_DIR", "out")
    assert output_dir("gifs").resolve() == (output_root() / "gifs").resolve() == (tmp_path / "out" / "gifs").resolve()

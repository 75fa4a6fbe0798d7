"""`cronplan import --from crontab`: real crontabs in, a jobs.json out that fires when cron would."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.fixtures_core import Project
from tests.import_helpers import DATA, by_name, import_into, next_utc, notes

CRONTAB = DATA / "crontab"
USER = CRONTAB / "user.crontab"


def test_user_crontab_jobs_carry_shell_env_and_zone(project: Project) -> None:
    _, doc = import_into(project, "crontab", USER)
    jobs = by_name(doc)
    backup = jobs["/usr/local/bin/backup.sh --full > /var/log/backup.log 2>&1"]
    assert backup["schedule"] == {"kind": "cron", "expr": "30 2 * * *", "tz": "Europe/Berlin"}
    # A crontab command is a shell line run by $SHELL (set above it), not an argv.
    assert backup["command"] == [
        "/bin/bash",
        "-c",
        "/usr/local/bin/backup.sh --full > /var/log/backup.log 2>&1",
    ]
    assert backup["env"] == {
        "SHELL": "/bin/bash",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "BACKUP_DIR": "/srv/backups",  # quotes and spaces around '=' as cron reads them
    }
    assert jobs["find /tmp/cache -mtime +7 -delete"]["schedule"]["expr"] == "@daily"
    assert jobs["date +%Y-%m-%d >> /var/log/sunday.log"]["command"][2] == (
        "date +%Y-%m-%d >> /var/log/sunday.log"  # \% is a literal %
    )
    assert len(doc["jobs"]) == 8


def test_lines_that_cannot_be_carried_over_are_reported_with_file_and_line(
    project: Project,
) -> None:
    res, _ = import_into(project, "crontab", USER)
    text = "\n".join(notes(res))
    where = str(USER)
    assert f"{where}:2: MAILTO is not carried over" in text
    assert f"{where}:17: the text after '%' is the command's stdin" in text
    assert f"{where}:18: not imported: @reboot runs at boot" in text
    assert f"{where}:20: not imported: unknown macro '@every'" in text
    assert (
        f"{where}:21: not imported: the result would not validate: /schedule/expr: bad minute field '61'"
        in text
    )


def test_import_is_stable(project: Project) -> None:
    first = project.cli("import", "--from", "crontab", str(USER))
    second = project.cli("import", "--from", "crontab", str(USER))
    assert first.stdout == second.stdout
    assert "backup-1276f4" in first.stdout  # ids: the program's name and a hash of the entry


def test_round_trip_fixed_time_across_spring_dst_like_debian_cron(project: Project) -> None:
    _, doc = import_into(project, "crontab", USER)
    job = by_name(doc)["/usr/local/bin/backup.sh --full > /var/log/backup.log 2>&1"]
    # 30 2 * * * with CRON_TZ=Europe/Berlin; 02:30 does not exist on 30 March 2031: cron runs it at 03:00.
    assert next_utc(project, job["id"], "2031-03-28T12:00:00Z", 3) == [
        "2031-03-29T01:30:00Z",
        "2031-03-30T01:00:00Z",
        "2031-03-31T00:30:00Z",
    ]


def test_round_trip_day_of_month_or_day_of_week(project: Project) -> None:
    """`0 0 13 * fri`: both restricted, so cron runs on every 13th and on every Friday (OR)."""
    _, doc = import_into(project, "crontab", USER)
    job = by_name(doc)['echo "friday or the 13th"']
    assert next_utc(project, job["id"], "2021-08-01T00:00:00Z", 7) == [
        "2021-08-05T22:00:00Z",  # Fri 6 Aug, midnight in Berlin (CEST)
        "2021-08-12T22:00:00Z",  # Fri 13 Aug: both match, one run
        "2021-08-19T22:00:00Z",
        "2021-08-26T22:00:00Z",
        "2021-09-02T22:00:00Z",
        "2021-09-09T22:00:00Z",
        "2021-09-12T22:00:00Z",  # Mon 13 Sep: the day of the month alone
    ]


def test_round_trip_names_and_ranges(project: Project) -> None:
    _, doc = import_into(project, "crontab", USER)
    jobs = by_name(doc)
    # */15 9-17 * * mon-fri, Berlin (CET in January)
    poll = jobs["cd /srv/app && ./bin/poll --quiet"]
    assert next_utc(project, poll["id"], "2031-01-03T16:40:00Z", 3) == [
        "2031-01-03T16:45:00Z",  # Fri 17:45
        "2031-01-06T08:00:00Z",  # Mon 09:00: the weekend skipped
        "2031-01-06T08:15:00Z",
    ]
    rotate = jobs["/usr/local/bin/rotate-keys"]  # 0 4 1 jan,jul *
    assert next_utc(project, rotate["id"], "2021-02-01T00:00:00Z", 2) == [
        "2021-07-01T02:00:00Z",
        "2022-01-01T03:00:00Z",
    ]
    sunday = jobs["date +%Y-%m-%d >> /var/log/sunday.log"]  # 0 12 * * 7: 7 is Sunday
    assert next_utc(project, sunday["id"], "2033-10-29T12:00:00Z", 2) == [
        "2033-10-30T11:00:00Z",  # Sunday 30 Oct 2033, after the autumn shift (CET)
        "2033-11-06T11:00:00Z",
    ]


def test_percent_becomes_stdin_exactly(project: Project, tmp_path: Path) -> None:
    crontab = tmp_path / "percent.crontab"
    crontab.write_text("* * * * * cat > out.txt; echo 100\\% >> out.txt%first%second \\% third%\n")
    res, doc = import_into(project, "crontab", crontab)
    assert "the text after '%' is the command's stdin" in res.stderr
    argv = doc["jobs"][0]["command"]
    subprocess.run(argv, cwd=tmp_path, check=True, timeout=30)
    # What cron would feed it: the text after the first %, further % as newlines, \% as %.
    assert (tmp_path / "out.txt").read_text() == "first\nsecond % third\n100%\n"


def test_system_crontabs_by_path_and_by_flag(project: Project, tmp_path: Path) -> None:
    res, doc = import_into(
        project, "crontab", CRONTAB / "etc" / "crontab", CRONTAB / "cron.d" / "certbot"
    )
    users = {job["x-crontab-user"] for job in doc["jobs"]}
    assert users == {"root"}
    assert len(doc["jobs"]) == 5
    hourly = by_name(doc)["cd / && run-parts --report /etc/cron.hourly"]
    assert hourly["schedule"] == {"kind": "cron", "expr": "17 * * * *"}
    assert "runs as 'root' in cron" in res.stderr
    assert "no CRON_TZ" in res.stderr  # they ran in the machine's zone
    plain = tmp_path / "system-style"
    plain.write_text("0 5 * * * www-data /usr/bin/php /srv/site/cron.php\n")
    # Without --system the user field would be read as the command.
    res = project.cli("import", "--from", "crontab", "--system", str(plain))
    assert res.exit_code == 0, res.stderr
    assert '"x-crontab-user": "www-data"' in res.stdout
    assert '"/usr/bin/php /srv/site/cron.php"' in res.stdout


def test_nothing_importable_is_exit_1_with_a_reason(project: Project, tmp_path: Path) -> None:
    only = tmp_path / "reboot.crontab"
    only.write_text("# boot only\n@reboot /usr/local/bin/start\n")
    res = project.cli("import", "--from", "crontab", str(only))
    assert res.exit_code == 1
    assert res.stdout == ""
    assert f"{only}:2: not imported: @reboot" in res.stderr
    assert "nothing to import" in res.stderr


def test_unreadable_files_are_clear_errors(project: Project, tmp_path: Path) -> None:
    res = project.cli("import", "--from", "crontab", str(tmp_path / "missing"))
    assert (res.exit_code, res.stdout) == (1, "")
    assert res.stderr == f"Error: cannot import {tmp_path / 'missing'}: no such file\n"
    binary = tmp_path / "binary"
    binary.write_bytes(b"0 1 * * * ok\n\xff\xfe\n")
    res = project.cli("import", "--from", "crontab", str(binary))
    assert res.exit_code == 1
    assert f"{binary}:2: cannot import: the file is not valid UTF-8" in res.stderr
    res = project.cli("import", "--from", "crontab", str(tmp_path))
    assert res.exit_code == 1
    assert "it is a directory" in res.stderr


def test_system_flag_is_for_crontabs_only(project: Project) -> None:
    res = project.cli("import", "--from", "k8s", "--system", str(USER))
    assert res.exit_code == 64
    assert "--system applies to --from crontab only" in res.stderr


def test_real_subprocess_import(project: Project) -> None:
    res = project.run("import", "--from", "crontab", str(USER))
    assert res.exit_code == 0, res.stderr
    assert res.stdout.startswith(
        '{\n  "$schema": "https://cronplan.dev/schemas/v1/jobs.schema.json"'
    )


def test_tz_variable_is_the_zone_unless_cron_tz_is_set(project: Project, tmp_path: Path) -> None:
    crontab = tmp_path / "tz.crontab"
    crontab.write_text(
        "TZ=Asia/Tokyo\n"
        "0 9 * * * /usr/bin/first\n"
        "CRON_TZ=America/Chicago\n"
        "TZ=Europe/Lisbon\n"
        "0 9 * * * /usr/bin/second\n"
        "0 9 * * *\n"
    )
    res, doc = import_into(project, "crontab", crontab)
    first, second = doc["jobs"]
    assert first["schedule"]["tz"] == "Asia/Tokyo"
    assert first["env"] == {"TZ": "Asia/Tokyo"}  # the command saw TZ too
    assert f"{crontab}:2: TZ=Asia/Tokyo is read as the schedule's zone" in res.stderr
    assert second["schedule"]["tz"] == "America/Chicago"  # CRON_TZ wins over a later TZ
    assert second["env"] == {"TZ": "Europe/Lisbon"}
    assert (
        f"{crontab}:6: not imported: expected five time fields followed by a command" in res.stderr
    )
    assert next_utc(project, first["id"], "2030-01-01T00:00:00Z", 1) == ["2030-01-02T00:00:00Z"]

"""Settings, read from the environment.

With no variables set the app runs on its embedded default: SQLite (WAL) in `var/`, a
filesystem Celery broker in `var/broker/` and media files in `var/media/`. Production
points `DATABASE_URL` at PostgreSQL and `CELERY_BROKER_URL` at Redis or RabbitMQ.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from kombu import Queue

from medgen_site.secrets import read_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


DEBUG = env_bool("DEBUG", False)


def env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# Everything the embedded default writes lives under one folder.
DATA_DIR = Path(os.environ.get("MEDGEN_DATA_DIR", BASE_DIR / "var"))

# --- Secrets and transport security ----------------------------------------------------
# A configured deployment (DATABASE_URL or CELERY_BROKER_URL set) must name its SECRET_KEY (or a
# SECRET_KEY_FILE); it refuses to start without one. The embedded default generates a key on first
# start and keeps it in its data folder (mode 0600), so no two machines share one.
CONFIGURED_DEPLOYMENT = bool(os.environ.get("DATABASE_URL") or os.environ.get("CELERY_BROKER_URL"))
SECRET_KEY = read_secret_key(DATA_DIR, configured=CONFIGURED_DEPLOYMENT)

# Behind HTTPS (MEDGEN_HTTPS=1): redirect plain HTTP, secure cookies, HSTS for a year. Behind a proxy
# that terminates TLS, also set SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https".
MEDGEN_HTTPS = env_bool("MEDGEN_HTTPS", False)
SECURE_SSL_REDIRECT = MEDGEN_HTTPS
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = MEDGEN_HTTPS
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if MEDGEN_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = MEDGEN_HTTPS
if os.environ.get("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = tuple(env_list("SECURE_PROXY_SSL_HEADER"))
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Content-Security-Policy (django-csp): scripts only from this origin (the viewer's codecs need
# 'wasm-unsafe-eval' for WebAssembly, never 'unsafe-eval'), no inline scripts or handlers; inline styles
# are allowed because plotly and Cornerstone3D set them; images and workers may be blob: URLs the viewer
# makes. JSON and array endpoints under /api/ execute nothing and carry no policy.
CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/api/"],
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", "'wasm-unsafe-eval'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
# `Server-Timing` (server time and query counts) goes to staff only; "all" for the load benchmarks.
MEDGEN_SERVER_TIMING = os.environ.get("MEDGEN_SERVER_TIMING", "staff")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc as static files: the docs pages load nothing from outside
    "axes",
    "csp",
    "core",
    "inference",
    "evaluation",
    "readerstudy",
    "demo",
]

MIDDLEWARE = [
    "medgen_site.middleware.ServerTimingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "medgen_site.middleware.UploadLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.responses.DomainErrorMiddleware",
    "axes.middleware.AxesMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "medgen_site.urls"
WSGI_APPLICATION = "medgen_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "readerstudy.context_processors.reading",
                "inference.context_processors.organising",
            ],
        },
    },
]

# --- Cache and sessions ---------------------------------------------------------------
# A shared cache (Redis) when CACHE_URL is set: sessions are then read from it (written through
# to the database), which takes a query off every request. Without one, each process keeps its
# own memory cache and sessions stay in the database: a per-process session cache would keep a
# logged-out session alive in the other processes.
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# --- Database -------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    # Health checks: a connection the server dropped (a restart, pg_terminate_backend) is replaced before
    # the request uses it, instead of answering 500.
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True
        )
    }
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("MEDGEN_SQLITE_PATH") or DATA_DIR / "medgen.sqlite3",
            "OPTIONS": {
                # WAL lets the web server read while the worker writes; IMMEDIATE takes the
                # write lock up front so two processes never deadlock upgrading a read lock.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
            # A file, not memory, so a worker process in the tests can open the test database.
            "TEST": {"NAME": str(DATA_DIR / "test_medgen.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Files ----------------------------------------------------------------------------
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", DATA_DIR / "media"))
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
# static/viewer/ (the viewer bundle) and static/vendor/plotly/plotly.min.js (plotly.js's cartesian partial
# bundle from npm: scatter and box, all the pages draw) are written by `node frontend/build.mjs`; no CDN.
STATICFILES_DIRS = [BASE_DIR / "static"]

# S3-compatible storage (django-storages, boto3 installed separately) when a bucket is set;
# otherwise the local filesystem, which may be a shared mount for several workers.
if os.environ.get("AWS_STORAGE_BUCKET_NAME"):
    _default_storage = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {}}
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _default_storage,
    # Outside DEBUG: hashed names (collectstatic writes a manifest; `{% static %}` answers the hashed
    # name), which whitenoise serves with `max-age` of ten years and `immutable`; gzip copies beside
    # them. The scripts' module imports and the viewer's worker address name hashed files too
    # (core/staticfiles.py). The test suite serves from the finders instead (tests/conftest.py).
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "core.staticfiles.HashedModulesStorage"
        )
    },
}

# Uploads stream to temporary files past 10 MB; anything past the limits is refused
# with a 413 and a message before it is stored.
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
MEDGEN_MAX_UPLOAD_BYTES = env_int("MEDGEN_MAX_UPLOAD_BYTES", 2 * 1024**3)
# Archives (dataset imports, submissions) may not expand past this many bytes or entries.
# The entry count is read from the archive's end record and refused at once; under it every
# entry is extracted before the scan (~0.3 ms a file), so 20,000 keeps a junk archive to a few
# seconds. A 2 GiB upload of real slices (100 KB or more each, zipped) holds fewer entries.
MEDGEN_MAX_ARCHIVE_BYTES = env_int("MEDGEN_MAX_ARCHIVE_BYTES", 4 * 1024**3)
MEDGEN_MAX_ARCHIVE_ENTRIES = env_int("MEDGEN_MAX_ARCHIVE_ENTRIES", 20_000)
# Every image of an upload (dataset import, submission) is checked from its header before
# anything is decoded, decompressed or allocated. MEDGEN_MAX_IMAGE_VOXELS counts the values
# of the stored float32 array, C·D·H·W (each channel counts): 512³ ≈ 134M covers a 512×512 CT
# of 512 slices or a 4-channel 320³ MRI, and keeps one image at 512 MiB stored (about 1.1 GB
# of memory at its peak while a .nii.gz that size is read).
# MEDGEN_MAX_DECOMPRESSED_BYTES is the one limit on what any compressed input may expand to
# (a .nii.gz, an NPZ member, PNG/TIFF or DICOM pixels, a deflated DICOM data set, a zip
# entry): 2 GiB, room for 512³ voxels stored as float64, and a header.
MEDGEN_MAX_IMAGE_VOXELS = env_int("MEDGEN_MAX_IMAGE_VOXELS", 512**3)
MEDGEN_MAX_DECOMPRESSED_BYTES = env_int("MEDGEN_MAX_DECOMPRESSED_BYTES", 2 * 1024**3)
# An import holds every decoded image in memory until the whole upload is checked: past this many
# float32 bytes in all it stops (8 GiB: a 4 GiB archive of 16-bit images, decoded).
MEDGEN_MAX_IMPORT_BYTES = env_int("MEDGEN_MAX_IMPORT_BYTES", 8 * 1024**3)
# The time one import or submission check may take unpacking and reading (seconds); past it,
# it stops with the problems found so far.
MEDGEN_IMPORT_SECONDS = env_int("MEDGEN_IMPORT_SECONDS", 300)
# The viewer's whole-array requests (…/data/ without ?slice=k) past this many float32 bytes
# are refused with a 413; slices are always served.
MEDGEN_VIEWER_MAX_ARRAY_BYTES = env_int("MEDGEN_VIEWER_MAX_ARRAY_BYTES", 256 * 1024**2)

# --- Auth and API ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling (django-axes): after MEDGEN_LOGIN_FAILURE_LIMIT wrong passwords for one username from
# one address, that pair is refused (429) for MEDGEN_LOGIN_COOLOFF_MINUTES, the right password included.
AUTHENTICATION_BACKENDS = ["core.auth.ThrottledLogins", "django.contrib.auth.backends.ModelBackend"]
AXES_ENABLED = env_bool("MEDGEN_LOGIN_THROTTLING", True)
AXES_FAILURE_LIMIT = env_int("MEDGEN_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("MEDGEN_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
# Anyone may create an account (POST /api/auth/register/, /accounts/signup/) unless this is off.
MEDGEN_SELF_REGISTRATION = env_bool("MEDGEN_SELF_REGISTRATION", True)
# E-mail (invitation links to readers): sent only when MEDGEN_EMAIL is on, which it is once EMAIL_HOST is set.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "webmaster@localhost")
MEDGEN_EMAIL = env_bool("MEDGEN_EMAIL", bool(os.environ.get("EMAIL_HOST")))
LOGIN_URL = "login"
# After a login without ?next=: "Your reading" for readers with a study still to read, else the tasks.
LOGIN_REDIRECT_URL = "reading-landing"
LOGOUT_REDIRECT_URL = "home"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["core.policy.PolicyPermission"],
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "core.responses.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MedGen Eval API",
    "DESCRIPTION": (
        "Benchmark tasks, datasets and cases, generative models, runs and submissions, evaluations and "
        "leaderboards, the viewer's image arrays, and reader studies of the MedGen Eval platform. "
        "Authenticate with `Authorization: Token …` (`POST /api/auth/token/`) or a session login."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Choice sets whose field name ("status", "kind") several components share: named, not hashed.
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "core.models.JobStatus.choices",
        "RunKindEnum": "inference.models.RunKind.choices",
    },
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- Celery ---------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = DATA_DIR / "broker"
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        # The folder is polled; kombu's default of 1 s left the demo's short jobs (validations, evaluations)
        # waiting longer than they ran.
        "polling_interval": 0.2,
    }
else:
    # Redis redelivers an unacknowledged message (worker killed) after this long; the
    # stale-run reaper usually acts first. Runs are idempotent, so a late copy is a no-op.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 6 * 3600)
CELERY_TASK_SOFT_TIME_LIMIT = int(CELERY_TASK_TIME_LIMIT * 0.9)
CELERY_TASK_DEFAULT_QUEUE = "metrics"
CELERY_TASK_QUEUES = (Queue("inference"), Queue("metrics"))
# Every job kind goes through one task, `core.execute_job`, sent to the queue its kind names
# (core.jobs.register): model validation, inference runs and downstream training on `inference`
# (GPU-capable workers), submissions and evaluations on `metrics`.
CELERY_TASK_ROUTES = {
    "core.reap_jobs": {"queue": "metrics"},
    "demo.tasks.*": {"queue": "metrics"},
}
CELERY_BEAT_SCHEDULE = {
    "reap-jobs": {"task": "core.reap_jobs", "schedule": timedelta(seconds=60)},
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Jobs (runs, validations, evaluations, downstream training): a running job whose worker has not
# reported for this long is requeued by the reaper, or failed once it has used this many attempts
# (a worker that died counts as an attempt, so a job that kills its worker cannot loop forever).
# Worker threads beat every MEDGEN_JOB_HEARTBEAT_SECONDS while a job works. A final job whose
# follow-ups (the next job) were not all started is signalled again after MEDGEN_JOB_RECHAIN_SECONDS.
MEDGEN_JOB_STALE_SECONDS = env_int("MEDGEN_JOB_STALE_SECONDS", 600)
MEDGEN_JOB_MAX_ATTEMPTS = env_int("MEDGEN_JOB_MAX_ATTEMPTS", 3)
MEDGEN_JOB_HEARTBEAT_SECONDS = env_int("MEDGEN_JOB_HEARTBEAT_SECONDS", max(1, min(30, MEDGEN_JOB_STALE_SECONDS // 4)))
MEDGEN_JOB_RECHAIN_SECONDS = env_int("MEDGEN_JOB_RECHAIN_SECONDS", 60)
# CPU threads per worker pool process (torch, OpenMP, BLAS): empty for the machine's cores divided by
# the worker's concurrency (see core/threads.py).
MEDGEN_WORKER_THREADS = env_int("MEDGEN_WORKER_THREADS", 0)
MEDGEN_INFERENCE_BATCH_SIZE = env_int("MEDGEN_INFERENCE_BATCH_SIZE", 8)
# The model sandbox (inference/sandbox, README "Security: the model sandbox"): every validation and
# run loads the uploaded model in its own confined process, which may use this much memory (address
# space on the CPU) and live this many seconds (wall clock; CPU time is this × its threads) per job.
# A worker running as root drops the process to MEDGEN_SANDBOX_USER (empty: stay root, not advised).
# MEDGEN_SANDBOX_THREADS: torch threads in the sandbox; 0 for the worker process's own count.
MEDGEN_SANDBOX_MEMORY_BYTES = env_int("MEDGEN_SANDBOX_MEMORY_BYTES", 8 * 1024**3)
MEDGEN_SANDBOX_SECONDS = env_int("MEDGEN_SANDBOX_SECONDS", 3600)
MEDGEN_SANDBOX_USER = os.environ.get("MEDGEN_SANDBOX_USER", "nobody")
MEDGEN_SANDBOX_THREADS = env_int("MEDGEN_SANDBOX_THREADS", 0)

# Evaluation. Bootstrap CIs resample cases with a fixed seed, so a re-run gives the same CI.
MEDGEN_EVALUATION_BATCH_SIZE = env_int("MEDGEN_EVALUATION_BATCH_SIZE", 16)
MEDGEN_BOOTSTRAP_RESAMPLES = env_int("MEDGEN_BOOTSTRAP_RESAMPLES", 2000)
MEDGEN_FEATURE_BOOTSTRAP_RESAMPLES = env_int("MEDGEN_FEATURE_BOOTSTRAP_RESAMPLES", 200)
MEDGEN_BOOTSTRAP_SEED = env_int("MEDGEN_BOOTSTRAP_SEED", 0)
# Feature extractors evaluated on every run; one that needs weights is listed as unavailable
# (with the reason on the run page) until its weights file is configured.
MEDGEN_FEATURE_EXTRACTORS = [
    name.strip() for name in os.environ.get("MEDGEN_FEATURE_EXTRACTORS", "radiomics,inception_v3").split(",") if name
]
# Local weights files, never downloaded, one setting per extractor (its spec's weights_setting):
# pt_inception-2015-12-05-6726825d.pth for FID.
MEDGEN_INCEPTION_WEIGHTS = os.environ.get("MEDGEN_INCEPTION_WEIGHTS", "")
# ViT-B-32.pt (OpenAI's CLIP TorchScript file) for CLIP similarity, CMMD and FD_CLIP; a task listing one of
# them gets the "clip" extractor even when MEDGEN_FEATURE_EXTRACTORS leaves it out.
MEDGEN_CLIP_WEIGHTS = os.environ.get("MEDGEN_CLIP_WEIGHTS", "")
# dinov2_vitb14_pretrain.pth for FD_DINOv2, and its sha256 (facebookresearch/dinov2 publishes none: pin yours).
MEDGEN_DINOV2_WEIGHTS = os.environ.get("MEDGEN_DINOV2_WEIGHTS", "")
MEDGEN_DINOV2_WEIGHTS_SHA256 = os.environ.get("MEDGEN_DINOV2_WEIGHTS_SHA256", "")
# LPIPS (a task that lists "lpips" among its metrics): the trunk (alex | vgg | squeeze), torchvision's file of
# that trunk (alexnet-owt-7be5be79.pth for alex), and the heads file (default: the installed lpips wheel's).
MEDGEN_LPIPS_NET = os.environ.get("MEDGEN_LPIPS_NET", "alex")
MEDGEN_LPIPS_WEIGHTS = os.environ.get("MEDGEN_LPIPS_WEIGHTS", "")
MEDGEN_LPIPS_HEADS = os.environ.get("MEDGEN_LPIPS_HEADS", "")
# Downstream task: CPU threads per training job. One thread is fastest on a small shared machine
# (more oversubscribe the cores the web server and other jobs use); the same count gives the same numbers.
MEDGEN_DOWNSTREAM_THREADS = env_int("MEDGEN_DOWNSTREAM_THREADS", 1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The filesystem transport has no host; kombu warns about it on every connection.
        "kombu.connection": {"level": "ERROR"},
        # A lockout is logged once as a warning; the per-attempt lines are noise.
        "axes": {"level": "WARNING"},
    },
}

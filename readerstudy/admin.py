"""Admin: studies are edited in the product's own pages (which freeze them); here they can be inspected.

Answers, items and images are read-only: editing them would corrupt a study's record.
"""

from django.contrib import admin

from .models import Answer, ReaderSession, ReaderStudy, StudyItem


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ReaderStudy)
class ReaderStudyAdmin(admin.ModelAdmin):
    list_display = ["title", "task", "design", "status", "published_at", "created_at"]
    list_filter = ["design", "status"]
    search_fields = ["title"]
    filter_horizontal = ["readers", "editors", "runs"]

    def get_readonly_fields(self, request, obj=None):
        fixed = ["uid", "status", "build_log", "started_at", "closed_at", "published_at", "created_by"]
        if obj is not None and obj.is_frozen:  # the item list and what built it cannot change under readers
            fixed += ["task", "design", "runs", "real_pool", "items_per_model", "real_ratio", "scales",
                      "allow_no_preference", "repeated_items", "attention_checks", "seed"]  # fmt: skip
        return fixed


@admin.register(StudyItem)
class StudyItemAdmin(ReadOnly):
    list_display = ["study", "index", "kind"]
    list_filter = ["study", "kind"]


@admin.register(ReaderSession)
class ReaderSessionAdmin(ReadOnly):
    list_display = ["study", "reader", "answered", "total", "started_at", "finished_at"]
    list_filter = ["study"]


@admin.register(Answer)
class AnswerAdmin(ReadOnly):
    list_display = ["session", "assignment", "duration_ms", "created_at"]
    list_filter = ["session__study"]

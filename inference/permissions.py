from rest_framework.permissions import SAFE_METHODS, BasePermission


def user_is_staff(user):
    return bool(user and user.is_authenticated and user.is_staff)


class ReadPublicWriteStaff(BasePermission):
    """Anyone may read (viewsets narrow what non-staff see to public tasks); only staff write.

    Readers (authenticated, not staff) and anonymous users can neither upload nor start
    anything.
    """

    message = "Only staff can upload or start anything."

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        return user_is_staff(request.user)

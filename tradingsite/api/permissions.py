"""Who may do what through the API: staff write, every other signed-in user reads.

The "readonly" group is the documented home of API-only readers, but any authenticated
non-staff user gets the same read access; no anonymous request passes.
"""

from rest_framework.permissions import SAFE_METHODS, BasePermission

READONLY_GROUP = "readonly"


class StaffWritesOthersRead(BasePermission):
    message = "Only staff users may change data; your account can read."

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return request.method in SAFE_METHODS or user.is_staff

    def has_object_permission(self, request, view, obj):
        return self.has_permission(request, view)

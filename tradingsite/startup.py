def require_ready_database():
    pass
